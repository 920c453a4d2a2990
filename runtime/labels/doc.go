// Package labels gives class indices their names: a classifier's output k is labels[k].
//
// Names come from the model when it carries them (the ONNX metadata_props entry MetadataKey,
// which dnx finetune writes from an image folder's class folders), from a file the user gives
// (one name per line, or a JSON array of strings), or, for a 1000-class output, from the
// ImageNet-1k names embedded here, in torchvision's order and spelling
// (torchvision.models._meta._IMAGENET_CATEGORIES; regenerate imagenet1k.txt with
// gen_imagenet1k.py).
package labels
