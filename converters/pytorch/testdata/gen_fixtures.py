#!/usr/bin/python3
"""Generates the PyTorch checkpoint fixtures of package converters/pytorch.

Run by hand, from any directory, with Debian's PyTorch (python3-torch 1.13, python3-torchvision):

    /usr/bin/python3 converters/pytorch/testdata/gen_fixtures.py

It rewrites, next to this script:

    densenet_ckpt.pth            torch.save zip format: a training checkpoint dict
                                 {"epoch", "arch", "state_dict"} whose tensors are views into one
                                 flat float32 buffer and one int64 buffer (storage offsets, a
                                 transposed classifier weight, a channels-last conv0 weight, 0-dim
                                 num_batches_tracked views)
    densenet_legacy.pth          the legacy format (_use_new_zipfile_serialization=False) of an
                                 nn.DataParallel state_dict ("module." keys) renamed to the old
                                 torchvision keys (norm.1 for norm1, ...), as pre-0.2 checkpoints were
    densenet.safetensors         the plain state_dict as .safetensors, written by hand below
    input.npy                    the fixed input [2,3,32,32], float16 (every value is exactly
                                 representable, so float32 readers see the values PyTorch used)
    logits.npy                   the eval-mode logits [2,5], float32

Rerunning reproduces every file byte for byte except densenet_legacy.pth, whose storage keys are
memory addresses (its tensors are the same).

The model is torchvision.models.DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8,
bn_size=4, num_classes=5) with the ImageNet stem, seeded, with randomized BN statistics. The
fixtures total under 100 KB; they are ours and are committed.
"""

import collections
import json
import os
import re
import struct

import numpy as np
import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))


def build_model():
    torch.manual_seed(20240611)
    m = torchvision.models.DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8,
                                    bn_size=4, num_classes=5)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(1 + 0.3 * torch.randn(c))
                mod.bias.copy_(0.2 * torch.randn(c))
                mod.running_mean.copy_(0.5 * torch.randn(c))
                mod.running_var.copy_(0.25 + 1.5 * torch.rand(c))
                mod.num_batches_tracked.fill_(int(torch.randint(1, 1000, ())))
        m.classifier.bias.copy_(0.1 * torch.randn(5))
    return m.eval()


def flat_views(sd):
    """Returns a copy of sd whose tensors are views into two shared buffers."""
    floats = [v for v in sd.values() if v.dtype == torch.float32]
    flat = torch.full((3 + sum(v.numel() for v in floats),), float("nan"))
    longs = torch.zeros(2 + len(sd), dtype=torch.int64)
    out = collections.OrderedDict()
    off, loff = 3, 2
    for k, v in sd.items():
        n = v.numel()
        if v.dtype == torch.int64:
            longs[loff] = v
            out[k] = longs[loff]  # 0-dim view at storage offset loff
            loff += 1
            continue
        region = flat[off:off + n]
        if k == "classifier.weight":  # [5,16] with strides (1,5)
            region.copy_(v.t().contiguous().flatten())
            out[k] = region.view(v.shape[1], v.shape[0]).t()
        elif k == "features.conv0.weight":  # channels-last: strides (H*W*C, 1, W*C, C)
            o, c, h, w = v.shape
            region.copy_(v.permute(0, 2, 3, 1).contiguous().flatten())
            out[k] = torch.as_strided(flat, v.shape, (h * w * c, 1, w * c, c), off)
        else:
            region.copy_(v.flatten())
            out[k] = region.view(v.shape)
        assert torch.equal(out[k], v), k
        off += n
    assert not out["classifier.weight"].is_contiguous()
    assert not out["features.conv0.weight"].is_contiguous()
    return out


OLD = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def old_keys(sd):
    """Renames norm1/conv2/... to the old torchvision keys norm.1/conv.2/..., keeping _metadata."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        mm = OLD.match(k)
        out[mm.group(1) + "." + mm.group(2) if mm else k] = v
    out._metadata = sd._metadata
    return out


def write_safetensors(path, sd):
    """Writes sd in the safetensors layout: u64 header size, JSON header, raw little-endian data."""
    names = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, pos = collections.OrderedDict(), [], 0
    for k, v in sd.items():
        b = v.contiguous().numpy().astype(v.numpy().dtype.newbyteorder("<")).tobytes()
        header[k] = {"dtype": names[v.dtype], "shape": list(v.shape), "data_offsets": [pos, pos + len(b)]}
        blobs.append(b)
        pos += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    model = build_model()
    sd = model.state_dict()

    torch.manual_seed(7)
    x = torch.randn(2, 3, 32, 32).half().float()  # float16-exact values
    with torch.no_grad():
        logits = model(x)

    torch.save({"epoch": 7, "arch": "densenet_fixture", "state_dict": flat_views(sd)},
               os.path.join(HERE, "densenet_ckpt.pth"))
    dp = torch.nn.DataParallel(model).state_dict()
    assert all(k.startswith("module.") for k in dp)
    torch.save(old_keys(dp), os.path.join(HERE, "densenet_legacy.pth"), _use_new_zipfile_serialization=False)
    write_safetensors(os.path.join(HERE, "densenet.safetensors"), sd)
    np.save(os.path.join(HERE, "input.npy"), x.numpy().astype(np.float16))
    np.save(os.path.join(HERE, "logits.npy"), logits.numpy().astype(np.float32))

    total = 0
    for f in sorted(os.listdir(HERE)):
        if f.endswith((".pth", ".safetensors", ".npy")):
            total += os.path.getsize(os.path.join(HERE, f))
            print(f"{f:28s} {os.path.getsize(os.path.join(HERE, f)):7d} bytes")
    print(f"{'total':28s} {total:7d} bytes; logits {logits.tolist()}")


if __name__ == "__main__":
    main()
