package data

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/dnx-ml/dnx/runtime/imageio"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// folder is the Dataset of ImageFolder.
type folder struct {
	size    int
	norm    Normalization
	classes []string
	paths   []string
	labels  []int
}

// ImageFolder returns the images under dir, laid out as torchvision's ImageFolder expects: one
// sub-folder per class, whose names sorted in byte order give the class ids, holding JPEG and PNG
// files (.jpg, .jpeg, .png in any case) at any depth. Hidden entries (names starting with ".") and
// files with other extensions are skipped. Images are size x size; the evaluation transform is
// imageio.Preprocess, the training augmentation a random crop of the same resized image plus a
// random horizontal flip (see the package documentation).
//
// Only the file names are read here: an unreadable image is reported by Load, naming the file
// (CheckImages checks every file's header up front). A folder with no class, or a class with no
// image, is an error.
func ImageFolder(dir string, size int, norm Normalization) (Dataset, error) {
	if size <= 0 || size > imageio.MaxSize {
		return nil, fmt.Errorf("image folder %s: image size %d is outside 1..%d", dir, size, imageio.MaxSize)
	}
	if err := checkNorm(norm); err != nil {
		return nil, fmt.Errorf("image folder %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	d := &folder{size: size, norm: norm}
	for _, e := range entries {
		if hidden(e.Name()) {
			continue
		}
		classDir := filepath.Join(dir, e.Name())
		if st, err := os.Stat(classDir); err != nil || !st.IsDir() { // follows symlinks
			continue
		}
		label := len(d.classes)
		n := len(d.paths)
		err := filepath.WalkDir(classDir, func(path string, ent fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != classDir && hidden(ent.Name()) {
				if ent.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !ent.IsDir() && isImageName(ent.Name()) {
				d.paths = append(d.paths, path)
				d.labels = append(d.labels, label)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("image folder %s: class %q: %w", dir, e.Name(), err)
		}
		if len(d.paths) == n {
			return nil, fmt.Errorf("image folder %s: %w: class folder %s holds no .jpg, .jpeg or .png file", dir, ErrDataset, classDir)
		}
		d.classes = append(d.classes, e.Name())
	}
	if len(d.classes) == 0 {
		return nil, fmt.Errorf("image folder %s: %w: no class sub-folders (expected one folder of images per class)", dir, ErrDataset)
	}
	return d, nil
}

// hidden reports whether a file name is hidden by convention (".git", ".ipynb_checkpoints", ".DS_Store").
func hidden(name string) bool { return strings.HasPrefix(name, ".") }

// isImageName reports whether name has an extension ImageFolder reads.
func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

func (d *folder) Len() int             { return len(d.paths) }
func (d *folder) NumClasses() int      { return len(d.classes) }
func (d *folder) ClassNames() []string { return append([]string(nil), d.classes...) }
func (d *folder) Size() (h, w int)     { return d.size, d.size }

// Load decodes image i. The augmentation resizes the shorter side to R = imageio.ResizeShort(S, S)
// and draws the crop's top offset in [0, rh-S], its left offset in [0, rw-S], then the flip.
func (d *folder) Load(i int, augment bool, rng *rand.Rand) (Example, error) {
	if err := checkIndex(i, len(d.paths)); err != nil {
		return Example{}, err
	}
	if err := checkRand(augment, rng); err != nil {
		return Example{}, err
	}
	path := d.paths[i]
	img, err := imageio.ReadFile(path)
	if err != nil {
		return Example{}, err // names the file
	}
	if !augment {
		t, err := imageio.Preprocess(img, d.size, d.size, d.norm)
		if err != nil {
			return Example{}, fmt.Errorf("%s: %w", path, err)
		}
		return Example{Image: tensor.Data[float32](t), Label: d.labels[i]}, nil
	}
	b := img.Bounds()
	rw, rh := imageio.ResizedSize(b.Dx(), b.Dy(), imageio.ResizeShort(d.size, d.size))
	top := rng.IntN(rh - d.size + 1)
	left := rng.IntN(rw - d.size + 1)
	flip := rng.IntN(2) == 1
	return Example{Image: imageio.ResampleWindow(img, rw, rh, top, left, d.size, d.size, flip, d.norm), Label: d.labels[i]}, nil
}
