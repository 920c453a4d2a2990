#!/usr/bin/python3
"""Times one training step of a CIFAR DenseNet-BC in PyTorch, the yardstick for `dnx finetune`.

Run by hand with Debian's python3 and python3-torch (1.13), not by CI:

    /usr/bin/python3 bench/pytorch/train_step.py                 # both modes, one subprocess each
    /usr/bin/python3 bench/pytorch/train_step.py --memory-efficient 1 --json

The model is DenseNet-BC (default L=100, k=12: three blocks of 16 bottleneck layers, 24 stem
channels, compression 0.5, CIFAR stem Conv3x3, 10 classes), built from torchvision's _DenseBlock and
_Transition, so memory_efficient=True is torchvision's: torch.utils.checkpoint recomputes each
layer's concat-BN-ReLU-Conv1x1 during backward instead of keeping it. A step is the forward in
train mode, CrossEntropyLoss, backward and SGD (lr 0.1, momentum 0.9, weight decay 1e-4) on a
random N(0,1) batch of 32x32 images with random labels, using --threads intra-op threads.

Each mode runs in a fresh process, because peak RSS (getrusage ru_maxrss) only grows: the report is
the process's peak after --warmup untimed and --steps timed steps. Times are per step: the median
and the minimum of the timed steps. With --json each mode prints one JSON line:
{"engine": "pytorch", "memory_efficient": ..., "batch": ..., "threads": ..., "s_per_step": ...,
 "min_s_per_step": ..., "peak_rss_bytes": ..., "model_rss_bytes": ..., "params": ...}.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def build(depth, growth, memory_efficient, classes=10):
    import torch.nn as nn
    from torchvision.models.densenet import _DenseBlock, _Transition

    if (depth - 4) % 6:
        raise SystemExit(f"train_step: --depth {depth}: DenseNet-BC needs depth 6n+4")
    n = (depth - 4) // 6
    features = nn.Sequential()
    c = 2 * growth
    features.add_module("conv0", nn.Conv2d(3, c, kernel_size=3, padding=1, bias=False))
    for i in range(3):
        features.add_module(f"denseblock{i + 1}", _DenseBlock(
            num_layers=n, num_input_features=c, bn_size=4, growth_rate=growth, drop_rate=0.0,
            memory_efficient=memory_efficient))
        c += n * growth
        if i != 2:
            features.add_module(f"transition{i + 1}", _Transition(c, c // 2))
            c //= 2
    features.add_module("norm5", nn.BatchNorm2d(c))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = features
            self.classifier = nn.Linear(c, classes)

        def forward(self, x):
            import torch
            import torch.nn.functional as F
            out = F.relu(self.features(x))
            out = F.adaptive_avg_pool2d(out, 1)
            return self.classifier(torch.flatten(out, 1))

    net = Net()
    for m in net.modules():  # torchvision's init
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.Linear):
            nn.init.constant_(m.bias, 0)
    return net


def rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def run_one(args, memory_efficient):
    import torch
    import torch.nn as nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    net = build(args.depth, args.growth, memory_efficient)
    net.train()
    params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 10, (args.batch,))
    # torch.utils.checkpoint only recomputes when an input requires grad or, as in torchvision,
    # when the layer's parameters do; torchvision checks `any(t.requires_grad for t in input)`.
    model_rss = rss_bytes()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return {
        "engine": "pytorch",
        "version": torch.__version__,
        "memory_efficient": memory_efficient,
        "depth": args.depth,
        "growth": args.growth,
        "batch": args.batch,
        "threads": args.threads,
        "steps": args.steps,
        "s_per_step": statistics.median(times),
        "min_s_per_step": min(times),
        "step_times_s": [round(t, 4) for t in times],
        "peak_rss_bytes": rss_bytes(),
        "model_rss_bytes": model_rss,
        "params": params,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--memory-efficient", type=int, choices=[0, 1],
                   help="run one mode in this process (default: both, each in a subprocess)")
    p.add_argument("--depth", type=int, default=100)
    p.add_argument("--growth", type=int, default=12)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON line per mode")
    args = p.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.batch < 1 or args.threads < 1:
        raise SystemExit("train_step: --steps, --batch and --threads must be >= 1, --warmup >= 0")

    if args.memory_efficient is not None:
        print(json.dumps(run_one(args, bool(args.memory_efficient))), flush=True)
        return

    reports = []
    for me in (1, 0):
        cmd = [sys.executable, __file__, "--memory-efficient", str(me)]
        for k in ("depth", "growth", "batch", "size", "threads", "steps", "warmup", "seed"):
            cmd += [f"--{k}", str(getattr(args, k))]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        reports.append(json.loads(out.strip().splitlines()[-1]))
    if args.json:
        for r in reports:
            print(json.dumps(r))
        return
    r0 = reports[0]
    print(f"PyTorch {r0['version']} DenseNet-BC L={args.depth} k={args.growth} ({r0['params']:,} params), "
          f"batch {args.batch} {args.size}x{args.size}, {args.threads} threads, "
          f"median of {args.steps} steps after {args.warmup} warm-up")
    print(f"{'memory_efficient':>16} {'s/step':>8} {'min s':>8} {'peak RSS MiB':>13} {'model RSS MiB':>14}")
    for r in reports:
        print(f"{str(r['memory_efficient']):>16} {r['s_per_step']:8.3f} {r['min_s_per_step']:8.3f} "
              f"{r['peak_rss_bytes'] / 2**20:13.1f} {r['model_rss_bytes'] / 2**20:14.1f}")


if __name__ == "__main__":
    main()
