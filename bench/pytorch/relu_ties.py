#!/usr/bin/python3
"""Shows that ../shared/models/finetune_bc28 sits on a ReLU tie: PyTorch 1.13 does not reproduce its
own reference once its float32 rounding changes (2 intra-op threads instead of 1, or the input
moved by one ulp), by as much as dnx differs from it.

Run by hand with Debian's python3, python3-torch (1.13), python3-torchvision and python3-onnx, not
by CI:

    /usr/bin/python3 bench/pytorch/relu_ties.py [--shared ../shared]

It loads model_before.onnx's initializers into torchvision's _DenseBlock/_Transition modules
(CIFAR DenseNet-BC L=28, k=8), then
  1. runs step 0 in float32 on 1 and 2 threads and in float64, and prints the largest difference of
     any parameter's gradient from grads_step0/;
  2. prints the input of transition2's BatchNormalization at the element where dnx's ReLU mask
     differs (sample 6, channel 24, pixel 128) in float32 and float64, and the pre-activation
     gamma*(x-mean)/sqrt(var+eps)+beta there;
  3. runs the reference's 4 SGD steps (Nesterov) on 1 and 2 threads and prints how far the weights
     and the eval logits land from model_after.onnx and logits_after_eval.pb.
"""

import argparse
import copy
import glob
import os
from collections import OrderedDict


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "../../../shared"))
    args = ap.parse_args()
    import onnx
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from onnx import numpy_helper
    from torchvision.models.densenet import _DenseBlock, _Transition

    d = os.path.join(args.shared, "models/finetune_bc28")

    def tensor(path):
        return torch.from_numpy(numpy_helper.to_array(onnx.load_tensor(path)).copy())

    init = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(os.path.join(d, "model_before.onnx")).graph.initializer}

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            f = OrderedDict(conv0=nn.Conv2d(3, 16, 3, padding=1, bias=False))
            c = 16
            for i, n in enumerate([4, 4, 4]):
                f["denseblock%d" % (i + 1)] = _DenseBlock(n, c, 4, 8, 0.0)
                c += n * 8
                if i < 2:
                    f["transition%d" % (i + 1)] = _Transition(c, c // 2)
                    c //= 2
            f["norm5"] = nn.BatchNorm2d(c)
            self.features = nn.Sequential(f)
            self.classifier = nn.Linear(c, 10)

        def forward(self, x):
            return self.classifier(torch.flatten(F.adaptive_avg_pool2d(F.relu(self.features(x)), 1), 1))

    net = Net()
    net.load_state_dict(init, strict=False)
    x, y = tensor(os.path.join(d, "x.pb")), tensor(os.path.join(d, "y.pb"))
    ref = {os.path.basename(p)[:-3]: tensor(p).double() for p in glob.glob(os.path.join(d, "grads_step0/*.pb"))}

    def step0(dtype, threads):
        torch.set_num_threads(threads)
        n = copy.deepcopy(net).to(dtype).train()
        seen = {}
        n.features.transition2.norm.register_forward_hook(lambda m, i, o:  # before the in-place ReLU
             seen.update(x=i[0].detach().clone(), z=o.detach().clone()))
        F.cross_entropy(n(x.to(dtype)), y).backward()
        worst = max(((p.grad.double() - ref[k]).abs().max().item(), k) for k, p in n.named_parameters())
        return worst, seen

    for dtype, threads in ((torch.float32, 1), (torch.float32, 2), (torch.float64, 1)):
        (w, k), seen = step0(dtype, threads)
        el = (6, 24, 128 // 12, 128 % 12)
        print("step 0, %s, %d thread(s): max |gradient - grads_step0| %.3g (%s); transition2.norm input %.9f, pre-activation %.3g"
              % (str(dtype).replace("torch.", ""), threads, w, k, seen["x"][el].item(), seen["z"][el].item()))

    after = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(os.path.join(d, "model_after.onnx")).graph.initializer}
    logits_after = tensor(os.path.join(d, "logits_after_eval.pb"))
    for threads in (1, 2):
        torch.set_num_threads(threads)
        n = copy.deepcopy(net).train()
        opt = torch.optim.SGD(n.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
        for _ in range(4):
            opt.zero_grad()
            F.cross_entropy(n(x), y).backward()
            opt.step()
        sd = n.state_dict()
        w = max((sd[k] - v).abs().max().item() for k, v in after.items())
        with torch.no_grad():
            lg = n.eval()(x)
        print("4 steps, %d thread(s): max |weights - model_after| %.3g, max |eval logits - logits_after_eval| %.3g"
              % (threads, w, (lg - logits_after).abs().max().item()))


if __name__ == "__main__":
    main()
