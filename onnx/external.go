package onnx

import (
	"fmt"
	"github.com/dnx-ml/dnx/internal/filekind"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
)

// readExternal returns the want bytes of a tensor whose data_location is EXTERNAL. The
// external_data keys are ONNX's: "location" (a path relative to the model's directory, required),
// "offset" and "length" (decimal byte counts; a missing length means "to the end of the file"),
// and "checksum", which is not verified. The location must stay inside baseDir, also after
// symlinks are resolved, and name a regular file (see openRegular); [offset, offset+length) must
// lie inside the file and hold exactly want bytes. Only then is the buffer allocated, so its size
// is backed by bytes on disk.
func readExternal(tp *onnxpb.TensorProto, baseDir string, want int64) ([]byte, error) {
	loc, offset, length, err := parseExternalKeys(tp.GetExternalData())
	if err != nil {
		return nil, err
	}
	path, err := resolveExternalPath(baseDir, loc)
	if err != nil {
		return nil, err
	}
	f, st, err := openRegular(path, loc)
	if err != nil {
		return nil, err
	}
	defer f.Close()
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

// openRegular opens the symlink-free path (from resolveExternalPath) of location loc, refusing
// anything but a regular file before opening it: opening a FIFO blocks until some writer appears,
// a device may never end or may act on being opened, and a directory or socket holds no tensor
// bytes. Since path has no symlinks left, Lstat describes the file that Open reaches, unless the
// path is replaced in between; the opened descriptor is checked again, and must be the very file
// that was checked, so a swapped-in symlink, device or directory is refused too. (A FIFO swapped
// in during that window can still block Open; refusing it without blocking needs O_NONBLOCK,
// which not every platform defines, so it would take per-OS files.)
func openRegular(path, loc string) (*os.File, fs.FileInfo, error) {
	before, err := os.Lstat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: location %q: %w", ErrExternalData, loc, err)
	}
	if !before.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%w: location %q is %s, not a regular file", ErrExternalData, loc, filekind.Of(before.Mode()))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: location %q: %w", ErrExternalData, loc, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%w: location %q: %w", ErrExternalData, loc, err)
	}
	if !st.Mode().IsRegular() || !os.SameFile(before, st) {
		f.Close()
		return nil, nil, fmt.Errorf("%w: location %q was replaced by %s while it was being opened", ErrExternalData, loc, otherKind(st.Mode()))
	}
	return f, st, nil
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

// otherKind names the kind of the file that replaced a checked one: another regular file, or
// what filekind says.
func otherKind(m fs.FileMode) string {
	if m.IsRegular() {
		return "another regular file"
	}
	return filekind.Of(m)
}
