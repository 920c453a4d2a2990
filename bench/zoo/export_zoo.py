#!/usr/bin/python3
"""Export a zoo of torchvision CNNs to ONNX for checking dnx on models other than DenseNet.

Run by hand, not by CI (it needs PyTorch, torchvision and onnx; Debian's packages are installed for
/usr/bin/python3, not for the pyenv python3 on PATH):

    /usr/bin/python3 bench/zoo/export_zoo.py [--out /tmp/zoo] [--only resnet18,googlenet]
    bench/zoo/check.sh [/tmp/zoo]

Every model is built by its torchvision constructor with random weights (weights=None, nothing is
downloaded) from a fixed seed. BatchNorm's affine parameters and running statistics are randomised too,
so that a BatchNorm bug (mean and variance swapped, epsilon misplaced, a stale fold) changes the logits
instead of hiding behind the identity statistics of a fresh model; the statistics are calibrated on
random batches first, so that the logits depend on the input (see randomise_batchnorm). The model is put in eval mode and
exported with a dynamic batch axis "N". Each model lands in OUT/<name>/ (OUT defaults to /tmp/zoo, outside
the repository: the files are large):

    model.onnx    the export (opset 13; the *_op17 variants use opset 17; the *_bn ones keep BatchNorm)
    input_0.pb    a float32 [2,3,224,224] N(0,1) batch, an onnx.TensorProto
    output_0.pb   PyTorch's output for that batch, an onnx.TensorProto
    ops.txt       the node op types of the exported graph, one per line with counts
    meta.json     opset, whether BatchNorm was kept, max|output| (check.sh's relative criterion) and
                  max|output[0] - output[1]| (how much the logits depend on the input)
"""

import argparse
import collections
import json
import os
import sys

import numpy as np
import onnx
import torch
import torchvision
from onnx import numpy_helper

SEED = 20240601
CALIBRATION_BATCHES = 2

# name -> (constructor, opset, keep_bn). The *_op17 entries re-export a model with opset 17 to exercise
# the newer operator forms (BatchNormalization-15, HardSwish-14, ...). PyTorch folds every
# BatchNormalization that follows a Conv into the Conv's weights when it exports in eval mode, so
# the *_bn entries export with training=PRESERVE (the model is still in eval mode): the
# BatchNormalization nodes stay in the graph, and dnx's own Conv+BN folding and fusion passes run.
ZOO = collections.OrderedDict([
    ("resnet18", (lambda: torchvision.models.resnet18(weights=None), 13, False)),
    ("resnet18_op17", (lambda: torchvision.models.resnet18(weights=None), 17, False)),
    ("resnet18_bn", (lambda: torchvision.models.resnet18(weights=None), 13, True)),
    ("resnet50", (lambda: torchvision.models.resnet50(weights=None), 13, False)),
    ("mobilenet_v2", (lambda: torchvision.models.mobilenet_v2(weights=None), 13, False)),
    ("mobilenet_v2_bn_op17", (lambda: torchvision.models.mobilenet_v2(weights=None), 17, True)),
    ("mobilenet_v3_small", (lambda: torchvision.models.mobilenet_v3_small(weights=None), 13, False)),
    ("mobilenet_v3_small_op17", (lambda: torchvision.models.mobilenet_v3_small(weights=None), 17, False)),
    ("mobilenet_v3_large", (lambda: torchvision.models.mobilenet_v3_large(weights=None), 13, False)),
    ("squeezenet1_1", (lambda: torchvision.models.squeezenet1_1(weights=None), 13, False)),
    ("shufflenet_v2_x0_5", (lambda: torchvision.models.shufflenet_v2_x0_5(weights=None), 13, False)),
    ("shufflenet_v2_x1_0", (lambda: torchvision.models.shufflenet_v2_x1_0(weights=None), 13, False)),
    ("efficientnet_b0", (lambda: torchvision.models.efficientnet_b0(weights=None), 13, False)),
    ("efficientnet_b0_op17", (lambda: torchvision.models.efficientnet_b0(weights=None), 17, False)),
    ("googlenet", (lambda: torchvision.models.googlenet(
        weights=None, aux_logits=False, transform_input=False, init_weights=True), 13, False)),
    ("densenet121", (lambda: torchvision.models.densenet121(weights=None), 13, False)),
    ("densenet169", (lambda: torchvision.models.densenet169(weights=None), 17, False)),
    ("densenet201", (lambda: torchvision.models.densenet201(weights=None), 17, False)),
])


def randomise_batchnorm(model, gen):
    """Give every BatchNorm random affine parameters and random, but signal-preserving, statistics.

    With torchvision's random initialisation the activations of most of these networks vanish
    layer by layer (small conv weights, BatchNorm's identity statistics), so the logits are the
    same for every input and a comparison with PyTorch tests only the classifier's bias. To keep
    the input's signal alive to the logits, the running statistics are first calibrated: a
    cumulative average of the batch statistics over random calibration batches, in train mode
    (which normalises with batch statistics, as eval mode will with these running ones). Then
    they are perturbed so that a BatchNorm bug still changes the output: scale in [0.5, 1.5],
    shift N(0, 0.1^2), variance times [0.8, 1.25], mean plus N(0, 0.1^2) standard deviations.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    with torch.no_grad():
        for m in bns:
            c = m.num_features
            if m.affine:
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(CALIBRATION_BATCHES):
            model(torch.randn(4, 3, 224, 224, generator=gen))
        for m in bns:
            c = m.num_features
            m.momentum = 0.1
            m.running_var.mul_(torch.rand(c, generator=gen) * 0.45 + 0.8)
            m.running_mean.add_(torch.randn(c, generator=gen) * 0.1 * m.running_var.sqrt())


def export(name, ctor, opset, keep_bn, out):
    torch.manual_seed(SEED)
    model = ctor()
    randomise_batchnorm(model, torch.Generator().manual_seed(SEED + 1))
    model.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(SEED + 2))
    with torch.no_grad():
        y = model(x)
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}, do_constant_folding=True,
                      training=torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    counts = collections.Counter(n.op_type for n in m.graph.node)
    with open(os.path.join(d, "ops.txt"), "w") as f:
        for op, k in sorted(counts.items()):
            f.write("%s %d\n" % (op, k))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"name": name, "opset": opset, "keep_bn": keep_bn, "seed": SEED,
                   "max_abs_output": y.abs().max().item(),
                   "max_abs_row_diff": (y[0] - y[1]).abs().max().item(), "torch": torch.__version__,
                   "torchvision": torchvision.__version__}, f)
        f.write("\n")
    for fname, t in (("input_0.pb", x), ("output_0.pb", y)):
        with open(os.path.join(d, fname), "wb") as f:
            f.write(numpy_helper.from_array(t.numpy().astype(np.float32), name="").SerializeToString())
    print("%-24s opset %d  output %s  max|y| %.3g  max|y0-y1| %.3g  ops %s" % (
        name, opset, tuple(y.shape), y.abs().max().item(), (y[0] - y[1]).abs().max().item(),
        ",".join(sorted(counts))), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/zoo", help="output folder (default /tmp/zoo)")
    ap.add_argument("--only", default="", help="comma-separated model names (default: all)")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(ZOO)
    for n in names:
        if n not in ZOO:
            sys.exit("unknown model %r; known: %s" % (n, ", ".join(ZOO)))
    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    for n in names:
        ctor, opset, keep_bn = ZOO[n]
        export(n, ctor, opset, keep_bn, args.out)


if __name__ == "__main__":
    main()
