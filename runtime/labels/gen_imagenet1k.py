#!/usr/bin/python3
"""Writes imagenet1k.txt: torchvision's ImageNet-1k class names, one per line, in class order.

Run by hand with Debian's python3-torchvision: /usr/bin/python3 runtime/labels/gen_imagenet1k.py
"""
import os

from torchvision.models._meta import _IMAGENET_CATEGORIES as names

assert len(names) == 1000 and all("\n" not in n for n in names)
with open(os.path.join(os.path.dirname(__file__), "imagenet1k.txt"), "w") as f:
    f.write("\n".join(names) + "\n")
