package onnx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
)

// readExternal returns the want bytes of a tensor whose data_location is EXTERNAL. The
// external_data keys are ONNX's: "location" (a path relative to the model's directory, required),
// "offset" and "length" (decimal byte counts; a missing length means "to the end of the file"),
// and "checksum", which is not verified. The location must stay inside baseDir, also after
// symlinks are resolved, and [offset, offset+length) must lie inside the file and hold exactly
// want bytes. Only then is the buffer allocated, so its size is backed by bytes on disk.
func readExternal(tp *onnxpb.TensorProto, baseDir string, want int64) ([]byte, error) {
	loc, offset, length, err := parseExternalKeys(tp.GetExternalData())
	if err != nil {
		return nil, err
	}
	path, err := resolveExternalPath(baseDir, loc)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExternalData, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExternalData, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: location %q is not a regular file", ErrExternalData, loc)
	}
	size := st.Size()
	if offset > size {
		return nil, fmt.Errorf("%w: location %q: offset %d is beyond the end of the %d-byte file", ErrExternalData, loc, offset, size)
	}
	if length < 0 {
		length = size - offset
	} else if length > size-offset {
		return nil, fmt.Errorf("%w: location %q: offset %d + length %d is beyond the end of the %d-byte file", ErrExternalData, loc, offset, length, size)
	}
	if length != want {
		return nil, fmt.Errorf("%w: location %q: length %d bytes, but the dims need %d", ErrExternalData, loc, length, want)
	}
	buf := make([]byte, length)
	if _, err := io.ReadFull(io.NewSectionReader(f, offset, length), buf); err != nil {
		return nil, fmt.Errorf("%w: location %q: %w", ErrExternalData, loc, err)
	}
	return buf, nil
}

// parseExternalKeys reads the external_data entries. length is -1 when absent.
func parseExternalKeys(kvs []*onnxpb.StringStringEntryProto) (loc string, offset, length int64, err error) {
	length = -1
	seen := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		k, v := kv.GetKey(), kv.GetValue()
		if seen[k] {
			return "", 0, 0, fmt.Errorf("%w: key %q given twice", ErrExternalData, k)
		}
		seen[k] = true
		switch k {
		case "location":
			loc = v
		case "offset", "length":
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil || n < 0 {
				return "", 0, 0, fmt.Errorf("%w: %s %q is not a non-negative integer", ErrExternalData, k, v)
			}
			if k == "offset" {
				offset = n
			} else {
				length = n
			}
		}
	}
	if loc == "" {
		return "", 0, 0, fmt.Errorf("%w: no location", ErrExternalData)
	}
	return loc, offset, length, nil
}

// resolveExternalPath joins loc to baseDir and returns the symlink-free path of the result,
// refusing anything that does not stay inside baseDir: an empty baseDir (the model came from
// memory, so there is no directory to be relative to), absolute locations, ".." escapes, and
// symlinks that point outside.
func resolveExternalPath(baseDir, loc string) (string, error) {
	if baseDir == "" {
		return "", fmt.Errorf("%w: location %q, but no base directory was given (model read from memory?)", ErrExternalData, loc)
	}
	// IsLocal rejects empty and absolute paths, volume names, and paths whose cleaned form
	// starts with "..".
	if !filepath.IsLocal(loc) {
		return "", fmt.Errorf("%w: location %q is absolute or leaves the model directory", ErrExternalData, loc)
	}
	base, err := filepath.Abs(baseDir)
	if err != nil {
		return "", fmt.Errorf("%w: base directory: %w", ErrExternalData, err)
	}
	realBase, err := filepath.EvalSymlinks(base)
	if err != nil {
		return "", fmt.Errorf("%w: base directory: %w", ErrExternalData, err)
	}
	realPath, err := filepath.EvalSymlinks(filepath.Join(realBase, loc))
	if err != nil {
		return "", fmt.Errorf("%w: location %q: %w", ErrExternalData, loc, err)
	}
	rel, err := filepath.Rel(realBase, realPath)
	if err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%w: location %q resolves to %s, outside the model directory %s", ErrExternalData, loc, realPath, realBase)
	}
	return realPath, nil
}
