package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// CIFAR binary format constants (https://www.cs.toronto.edu/~kriz/cifar.html): each record is the
// label byte(s) followed by a 32 x 32 image as 1024 red, 1024 green then 1024 blue bytes, rows in
// order, which is already the CHW layout.
const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide
	// maxCIFARFile bounds the size of one file read into memory; the largest real file, CIFAR-100's
	// train.bin, is 50000 * 3074 bytes (about 147 MiB).
	maxCIFARFile = 1 << 30
	// maxNamesFile bounds the size of a class-names file.
	maxNamesFile = 1 << 20
)

// cifarFormat describes one of the two binary distributions.
type cifarFormat struct {
	name       string
	labelBytes int      // 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
	classes    int      // of the label Load returns (the last label byte)
	coarse     int      // CIFAR-100's coarse classes, checked but not returned; 0 if none
	train      []string // training files, in order
	test       []string
	names      string // class-names file, one name a line
	subdir     string // the folder the distribution's archive extracts to
}

// cifarFormats returns the two distributions, CIFAR-10 first.
func cifarFormats() [2]cifarFormat {
	return [2]cifarFormat{{
		name: "CIFAR-10", labelBytes: 1, classes: 10,
		train: []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
		test:  []string{"test_batch.bin"}, names: "batches.meta.txt", subdir: "cifar-10-batches-bin",
	}, {
		name: "CIFAR-100", labelBytes: 2, classes: 100, coarse: 20,
		train: []string{"train.bin"}, test: []string{"test.bin"}, names: "fine_label_names.txt", subdir: "cifar-100-binary",
	}}
}

// cifar is the Dataset of CIFAR.
type cifar struct {
	records [][]byte // cifarPixels bytes each, slices of the files' data
	labels  []int
	names   []string
	table   *[3][256]float32
}

// CIFAR returns the training (train = true) or test split of a CIFAR-10 or CIFAR-100 binary
// distribution in dir (or in its cifar-10-batches-bin or cifar-100-binary sub-folder, where the
// archives extract to):
//
//   - CIFAR-10: data_batch_1.bin ... data_batch_5.bin (all five are required) or test_batch.bin;
//     records of 1 label byte and 3072 pixel bytes; 10 classes, named by batches.meta.txt if present;
//   - CIFAR-100: train.bin or test.bin; records of 2 label bytes (coarse, fine) and 3072 pixel
//     bytes; the fine label is used (100 classes), named by fine_label_names.txt if present.
//
// The files are read into memory and checked whole: a size that is not a whole number of records
// or a label out of range is an error naming the file (and the record). Images are 32 x 32; the
// training augmentation pads 4 black pixels, crops and flips.
func CIFAR(dir string, train bool, norm Normalization) (Dataset, error) {
	if err := checkNorm(norm); err != nil {
		return nil, fmt.Errorf("CIFAR %s: %w", dir, err)
	}
	format, root, err := findCIFAR(dir)
	if err != nil {
		return nil, err
	}
	files := format.test
	if train {
		files = format.train
	}
	d := &cifar{table: byteTable(norm)}
	for _, name := range files {
		path := filepath.Join(root, name)
		raw, err := readCapped(path, maxCIFARFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", format.name, err)
		}
		labels, records, err := parseCIFAR(raw, format)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", format.name, path, err)
		}
		d.labels = append(d.labels, labels...)
		d.records = append(d.records, records...)
	}
	d.names, err = readNames(filepath.Join(root, format.names), format.classes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", format.name, err)
	}
	return d, nil
}

// findCIFAR identifies the distribution in dir or in its archive sub-folder.
func findCIFAR(dir string) (cifarFormat, string, error) {
	formats := cifarFormats()
	for _, root := range []string{dir, filepath.Join(dir, formats[0].subdir), filepath.Join(dir, formats[1].subdir)} {
		for _, f := range formats {
			for _, name := range []string{f.train[0], f.test[0]} {
				if st, err := os.Stat(filepath.Join(root, name)); err == nil && !st.IsDir() {
					return f, root, nil
				}
			}
		}
	}
	if _, err := os.Stat(dir); err != nil {
		return cifarFormat{}, "", fmt.Errorf("CIFAR: %w", err)
	}
	return cifarFormat{}, "", fmt.Errorf("CIFAR %s: %w: no CIFAR binary files (expected data_batch_1.bin and test_batch.bin for CIFAR-10, train.bin and test.bin for CIFAR-100)", dir, ErrDataset)
}

// parseCIFAR splits the contents of one CIFAR binary file into labels and pixel records, checking
// that the data is a whole, non-zero number of records and that every label is in range.
func parseCIFAR(raw []byte, f cifarFormat) (labels []int, records [][]byte, err error) {
	recLen := f.labelBytes + cifarPixels
	if len(raw) == 0 || len(raw)%recLen != 0 {
		return nil, nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte records (%d label byte(s) + %d pixels); the file is truncated or not %s",
			ErrDataset, len(raw), recLen, f.labelBytes, cifarPixels, f.name)
	}
	n := len(raw) / recLen
	labels = make([]int, n)
	records = make([][]byte, n)
	for r := range n {
		rec := raw[r*recLen : (r+1)*recLen : (r+1)*recLen]
		if f.coarse > 0 && int(rec[0]) >= f.coarse {
			return nil, nil, fmt.Errorf("%w: record %d: coarse label %d is outside [0, %d)", ErrDataset, r, rec[0], f.coarse)
		}
		label := int(rec[f.labelBytes-1])
		if label >= f.classes {
			return nil, nil, fmt.Errorf("%w: record %d: label %d is outside [0, %d)", ErrDataset, r, label, f.classes)
		}
		labels[r], records[r] = label, rec[f.labelBytes:]
	}
	return labels, records, nil
}

// readCapped reads the regular file at path, refusing files over limit bytes. Errors name the file.
func readCapped(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err // *PathError names the file
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: not a regular file", path, ErrDataset)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes exceeds the limit of %d", path, ErrDataset, st.Size(), limit)
	}
	return os.ReadFile(path)
}

// readNames reads a class-names file: one name a line, blank lines ignored. A missing file gives
// the names "0", "1", ...; a file with another number of names is an error.
func readNames(path string, classes int) ([]string, error) {
	raw, err := readCapped(path, maxNamesFile)
	if errors.Is(err, fs.ErrNotExist) {
		return numberedNames(classes), nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, maxNamesFile)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(names) != classes {
		return nil, fmt.Errorf("%s: %w: %d class names, want %d", path, ErrDataset, len(names), classes)
	}
	return names, nil
}

func (d *cifar) Len() int             { return len(d.records) }
func (d *cifar) NumClasses() int      { return len(d.names) }
func (d *cifar) ClassNames() []string { return append([]string(nil), d.names...) }
func (d *cifar) Size() (h, w int)     { return cifarSide, cifarSide }

// Load normalises record i; the augmentation pads with black (pixel value 0) before normalising.
func (d *cifar) Load(i int, augment bool, rng *rand.Rand) (Example, error) {
	if err := checkIndex(i, len(d.records)); err != nil {
		return Example{}, err
	}
	if err := checkRand(augment, rng); err != nil {
		return Example{}, err
	}
	img := decodeBytes(d.records[i], d.table)
	if augment {
		fill := []float32{d.table[0][0], d.table[1][0], d.table[2][0]}
		img = padCropFlip(img, 3, cifarSide, cifarSide, smallPad(cifarSide, cifarSide), fill, rng)
	}
	return Example{Image: img, Label: d.labels[i]}, nil
}

// decodeBytes normalises 8-bit CHW pixels through table.
func decodeBytes(px []byte, table *[3][256]float32) []float32 {
	out := make([]float32, len(px))
	plane := len(px) / 3
	for c := range 3 {
		for j, v := range px[c*plane : (c+1)*plane] {
			out[c*plane+j] = table[c][v]
		}
	}
	return out
}
