package pytorch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// LoadFile reads the state_dict of the checkpoint at path (see Load). Errors are prefixed with
// the path.
func LoadFile(path string) (StateDict, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	sd, err := Load(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sd, nil
}

// Load reads the state_dict of a checkpoint of size bytes, recognizing the format from its
// first bytes: a zip archive (torch.save since PyTorch 1.6), a pickle (the legacy torch.save
// format) or a safetensors header. The keys are returned as stored; see Normalize.
func Load(r io.ReaderAt, size int64) (StateDict, error) {
	head := make([]byte, 9)
	n, err := r.ReadAt(head, 0)
	if n < len(head) && err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return ReadZip(r, size)
	case len(head) > 0 && head[0] == opProto:
		return ReadLegacy(r, size)
	case len(head) == 9 && head[8] == '{':
		return ReadSafetensors(r, size)
	}
	return nil, fmt.Errorf("%w: not a PyTorch checkpoint (expected a torch.save zip archive, a legacy torch.save file or a .safetensors file)", ErrFormat)
}

// loadTensors materializes every entry of the state_dict d. read returns the little-endian
// bytes of the storage record a tensor views; it is called once per record.
func loadTensors(d *pyDict, read func(ref *storageRef) ([]byte, error)) (StateDict, error) {
	records := map[string][]byte{}
	sd := make(StateDict, len(d.keys))
	for i, k := range d.keys {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("%w: state_dict key %v is a %s, not a str", ErrStateDict, k, typeName(k))
		}
		ref, ok := d.vals[i].(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("%w: state_dict entry %q is a %s, not a tensor", ErrStateDict, key, typeName(d.vals[i]))
		}
		raw, ok := records[ref.storage.key]
		if !ok {
			var err error
			if raw, err = read(ref.storage); err != nil {
				return nil, fmt.Errorf("tensor %q: %w", key, err)
			}
			records[ref.storage.key] = raw
		}
		if int64(len(raw))%int64(ref.storage.dtype.ByteSize()) != 0 {
			return nil, fmt.Errorf("%w: tensor %q: storage %q holds %d bytes, not a whole number of %s elements",
				ErrFormat, key, ref.storage.key, len(raw), ref.storage.dtype)
		}
		t, err := materialize(ref, raw)
		if err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %w", ErrFormat, key, err)
		}
		sd[key] = t
	}
	return sd, nil
}
