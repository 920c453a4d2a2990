package labels

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// MetadataKey is the metadata_props key under which a model carries its class names: a JSON
// array of strings (what dnx writes), or one name per line.
const MetadataKey = "labels"

// ErrLabels is wrapped by errors about label lists.
var ErrLabels = errors.New("bad labels")

// MaxLabels bounds the names one list may hold: label lists are user input.
const MaxLabels = 1 << 20

//go:embed imagenet1k.txt
var imagenet1k string

// ImageNet returns the 1000 ImageNet-1k class names in torchvision's order.
func ImageNet() []string {
	return strings.Split(strings.TrimSuffix(imagenet1k, "\n"), "\n")
}

// Parse reads a label list: a JSON array of strings, or one name per line (blank lines at the
// end ignored, leading and trailing spaces of each line trimmed; "\r\n" line ends accepted).
func Parse(text string) ([]string, error) {
	t := strings.TrimSpace(text)
	if t == "" {
		return nil, fmt.Errorf("%w: the list is empty", ErrLabels)
	}
	var names []string
	if strings.HasPrefix(t, "[") {
		if err := json.Unmarshal([]byte(t), &names); err != nil {
			return nil, fmt.Errorf("%w: not a JSON array of strings: %w", ErrLabels, err)
		}
	} else {
		for _, line := range strings.Split(t, "\n") {
			names = append(names, strings.TrimSpace(line))
		}
	}
	if len(names) > MaxLabels {
		return nil, fmt.Errorf("%w: %d names (the limit is %d)", ErrLabels, len(names), MaxLabels)
	}
	for i, n := range names {
		if n == "" {
			return nil, fmt.Errorf("%w: name %d is empty", ErrLabels, i)
		}
	}
	return names, nil
}

// ReadFile reads a label list file (see Parse); errors name the file.
func ReadFile(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > 64<<20 {
		return nil, fmt.Errorf("%s: %w: not a regular file of at most 64 MiB", path, ErrLabels)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	names, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return names, nil
}

// Encode formats names for MetadataKey: a JSON array.
func Encode(names []string) string {
	b, _ := json.Marshal(names) // strings always marshal
	return string(b)
}

// Source says where a list of names came from.
type Source string

// The sources For picks from, in that order.
const (
	FromFile     Source = "file"
	FromModel    Source = "model metadata"
	FromImageNet Source = "ImageNet-1k (embedded)"
	None         Source = "none"
)

// For returns the class names for a classifier with classes outputs: those of file (when
// given), else those the model's metadata carries under MetadataKey, else the ImageNet-1k names
// when classes is 1000, else none. A list whose length is not classes is an error naming where
// it came from.
func For(classes int, file string, metadata map[string]string) ([]string, Source, error) {
	var names []string
	var src Source
	switch {
	case file != "":
		n, err := ReadFile(file)
		if err != nil {
			return nil, None, err
		}
		names, src = n, FromFile
	case metadata[MetadataKey] != "":
		n, err := Parse(metadata[MetadataKey])
		if err != nil {
			return nil, None, fmt.Errorf("the model's metadata %q: %w", MetadataKey, err)
		}
		names, src = n, FromModel
	case classes == 1000:
		return ImageNet(), FromImageNet, nil
	default:
		return nil, None, nil
	}
	if len(names) != classes {
		where := file
		if src == FromModel {
			where = fmt.Sprintf("the model's metadata %q", MetadataKey)
		}
		return nil, None, fmt.Errorf("%s: %w: %d names for %d classes", where, ErrLabels, len(names), classes)
	}
	return names, src, nil
}
