package pytorch

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// maxDataPickle bounds the size of a zip checkpoint's data.pkl. densenet121's is about 90 KB;
// a checkpoint with optimizer state a few times that.
const maxDataPickle = 256 << 20

// maxDeflateRatio is the largest expansion DEFLATE can achieve; a compressed record that claims
// more is corrupt. (torch.save stores records uncompressed; re-zipped archives may deflate.)
const maxDeflateRatio = 1032

// ReadZip reads the state_dict of a checkpoint in torch.save's zip format: the records
// <name>/data.pkl (the pickled object, whose tensors name storages by persistent id) and
// <name>/data/<key> (each storage's raw little-endian bytes); <name> is the saved file's base
// name or "archive". A big-endian <name>/byteorder is refused.
func ReadZip(r io.ReaderAt, size int64) (StateDict, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: not a valid zip archive: %w", ErrFormat, err)
	}
	files := map[string]*zip.File{}
	var pkl *zip.File
	var torchScript bool
	for _, f := range zr.File {
		files[f.Name] = f
		dir, base, ok := strings.Cut(f.Name, "/")
		switch {
		case ok && base == "data.pkl" && !strings.Contains(dir, "/"):
			if pkl != nil {
				return nil, fmt.Errorf("%w: archive holds both %s and %s", ErrFormat, pkl.Name, f.Name)
			}
			pkl = f
		case ok && (base == "constants.pkl" || strings.HasPrefix(base, "code/")):
			torchScript = true
		}
	}
	if pkl == nil {
		if torchScript {
			return nil, fmt.Errorf("%w: this is a TorchScript archive (torch.jit.save); save model.state_dict() with torch.save instead", ErrFormat)
		}
		return nil, fmt.Errorf("%w: zip archive has no <name>/data.pkl record: not a torch.save checkpoint", ErrFormat)
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	if f, ok := files[prefix+"byteorder"]; ok {
		b, err := readRecord(f, 16, size)
		if err != nil {
			return nil, err
		}
		if order := strings.TrimSpace(string(b)); order != "little" {
			return nil, fmt.Errorf("%w: byte order %q is not supported (only little-endian checkpoints)", ErrFormat, order)
		}
	}
	data, err := readRecord(pkl, maxDataPickle, size)
	if err != nil {
		return nil, err
	}
	obj, err := unpickle(newSource(bytes.NewReader(data), 0, int64(len(data))), func(pid any) (any, error) {
		ref, _, err := parseStoragePID(pid, false)
		return ref, err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	d, _, err := pickStateDict(obj, "", 0)
	if err != nil {
		return nil, err
	}
	return loadTensors(d, func(ref *storageRef) ([]byte, error) {
		name := prefix + "data/" + ref.key
		f, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("%w: storage record %s is missing", ErrFormat, name)
		}
		want := uint64(ref.numel) * uint64(ref.dtype.ByteSize())
		if f.UncompressedSize64 != want {
			return nil, fmt.Errorf("%w: storage record %s holds %d bytes, the pickle declares %d %s elements (%d bytes)",
				ErrFormat, name, f.UncompressedSize64, ref.numel, ref.dtype, want)
		}
		return readRecord(f, want, size)
	})
}

// readRecord reads a whole zip record of at most limit bytes. The sizes in the central directory
// are checked against the archive size before the buffer is allocated.
func readRecord(f *zip.File, limit uint64, archiveSize int64) ([]byte, error) {
	n := f.UncompressedSize64
	switch {
	case n > limit:
		return nil, fmt.Errorf("%w: record %s of %d bytes exceeds the limit of %d", ErrFormat, f.Name, n, limit)
	case f.CompressedSize64 > uint64(archiveSize):
		return nil, fmt.Errorf("%w: record %s claims %d bytes in a %d-byte archive", ErrFormat, f.Name, f.CompressedSize64, archiveSize)
	case f.Method == zip.Store && n != f.CompressedSize64:
		return nil, fmt.Errorf("%w: stored record %s has sizes %d and %d", ErrFormat, f.Name, n, f.CompressedSize64)
	case n > maxDeflateRatio*(f.CompressedSize64+1):
		return nil, fmt.Errorf("%w: record %s claims to expand %d bytes to %d", ErrFormat, f.Name, f.CompressedSize64, n)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: record %s: %w", ErrFormat, f.Name, err)
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("%w: record %s: %w", ErrFormat, f.Name, err)
	}
	// Reading to EOF makes archive/zip verify the CRC-32.
	if m, err := io.Copy(io.Discard, io.LimitReader(rc, 1)); err != nil || m != 0 {
		return nil, fmt.Errorf("%w: record %s: longer than declared or corrupt: %v", ErrFormat, f.Name, err)
	}
	return buf, nil
}
