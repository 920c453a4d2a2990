// Package models is the DenseNet model zoo: named builders.Config presets with their input
// preprocessing, from the ImageNet DenseNet-121/161/169/201/264 to the paper's CIFAR models and a
// tiny model for demos and tests.
//
// Presets returns every preset and Lookup finds one by name; pass a preset's Config to
// builders.Build to get an ONNX model. Presets are plain values built on each call, so callers may
// modify what they get (for example Classes for fine-tuning) without affecting anyone else.
package models
