// Package data supplies labelled images to dnx finetune: dataset sources, the training
// augmentation, a train/validation split and a Loader that batches examples into NCHW float32
// tensors on worker goroutines while the caller computes.
//
// # Sources
//
// Every source implements Dataset. Examples are decoded lazily, in Load, so opening a dataset reads
// only its index (file names, or the raw bytes of a CIFAR batch):
//
//   - ImageFolder: one sub-folder per class, JPEG and PNG files (torchvision's ImageFolder layout);
//   - CIFAR: the CIFAR-10 and CIFAR-100 binary distributions;
//   - TensorFiles: an [N,C,H,W] float32 tensor and an [N] integer label tensor in .npy or
//     TensorProto (.pb) files, already normalised;
//   - Shapes: synthetic coloured shapes on noisy backgrounds, for demos and tests.
//
// # Transforms
//
// Load(i, false, nil) applies the evaluation transform; for image folders it is exactly
// imageio.Preprocess (resize the shorter side to round(S*256/224), centre-crop S x S, scale to [0, 1],
// normalise). Load(i, true, rng) applies the training augmentation, drawing from rng only:
//
//   - image folders: resize the shorter side as above, crop a uniformly random S x S window (instead
//     of the centre one), flip horizontally with probability 1/2;
//   - small images (CIFAR, tensors, Shapes): zero-pad p = round(min(H, W)/8) pixels on every side
//     (4 for 32 x 32, as torchvision's RandomCrop(32, padding=4)), crop a random H x W window, flip
//     with probability 1/2. CIFAR and Shapes pad with black before normalisation, tensors with 0
//     after it (the data is already normalised).
//
// The crop offsets are drawn first (vertical, then horizontal), then the flip.
//
// # Reproducibility
//
// Nothing in the package uses a global random source. The Loader seeds one generator per epoch for
// the shuffling order and one per example from (Seed, epoch, index) for the augmentation, so an
// epoch's batches are the same whatever the number of workers, and a run resumed at epoch e sees
// exactly the data an uninterrupted run would have seen.
//
// # Errors
//
// Dataset files are user input. Malformed files (truncated records, labels out of range, shapes
// that do not match) are reported with errors that wrap ErrDataset and name the file; undecodable
// images wrap imageio.ErrImage and name the file too. Two helpers let a caller find bad data
// before training rather than mid-epoch: CheckImages reads every image file's header (Without
// then leaves the bad ones out), and FirstLabelOutside finds a label file's first label outside a
// model's classes. LoaderOptions.SkipUnreadable leaves out of its batch an image that fails to
// decode even so (a truncated file), instead of ending the epoch.
package data
