package pytorch

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/big"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// legacyMagic and legacyProtocol open every file of the legacy torch.save format.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

const legacyProtocol = 1001

// ReadLegacy reads the state_dict of a checkpoint in the legacy torch.save format (PyTorch < 1.6,
// or _use_new_zipfile_serialization=False). The file is a sequence of five pickles, the magic
// number, the protocol version (1001), a sys_info dict (byte order, C type sizes), the object
// itself (tensors name storages by persistent id ('storage', type, key, location, numel, view)),
// and the list of storage keys, followed for each key in that order by the storage: an int64
// element count and the elements, little-endian.
func ReadLegacy(r io.ReaderAt, size int64) (StateDict, error) {
	src := newSource(r, 0, size)
	magic, err := unpickle(src, nil)
	if err != nil {
		return nil, fmt.Errorf("legacy header: %w", err)
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return nil, fmt.Errorf("%w: a pickle, but not a torch.save file (magic number %v)", ErrFormat, magic)
	}
	proto, err := unpickle(src, nil)
	if err != nil {
		return nil, fmt.Errorf("legacy header: %w", err)
	}
	if p, ok := proto.(int64); !ok || p != legacyProtocol {
		return nil, fmt.Errorf("%w: legacy torch.save protocol %v is not supported (want %d)", ErrFormat, proto, legacyProtocol)
	}
	info, err := unpickle(src, nil)
	if err != nil {
		return nil, fmt.Errorf("legacy sys_info: %w", err)
	}
	if d, ok := info.(*pyDict); ok {
		if le, ok := d.get("little_endian"); ok && le != true {
			return nil, fmt.Errorf("%w: big-endian legacy checkpoints are not supported", ErrFormat)
		}
	} else {
		return nil, fmt.Errorf("%w: legacy sys_info is a %s, not a dict", ErrFormat, typeName(info))
	}

	// Storages by root key: the element type comes from the persistent ids, the length from the
	// storage's own header after the pickles.
	type record struct {
		dtype  tensor.DType
		offset int64 // file offset of the first element
		numel  int64 // from the record header; -1 until read
	}
	records := map[string]*record{}
	obj, err := unpickle(src, func(pid any) (any, error) {
		ref, view, err := parseStoragePID(pid, true)
		if err != nil {
			return nil, err
		}
		if rec, ok := records[ref.key]; ok && rec.dtype != ref.dtype {
			return nil, fmt.Errorf("storage %q is used as both %s and %s", ref.key, rec.dtype, ref.dtype)
		} else if !ok {
			records[ref.key] = &record{dtype: ref.dtype, numel: -1}
		}
		if _, none := view.(pyNone); none {
			return ref, nil
		}
		// view = (view_key, offset, view_size): elements [offset, offset+view_size) of ref.key.
		v, ok := view.(pyTuple)
		if !ok || len(v) != 3 {
			return nil, fmt.Errorf("storage view metadata is a %s, want (key, offset, size)", typeName(view))
		}
		off, ok1 := v[1].(int64)
		n, ok2 := v[2].(int64)
		if !ok1 || !ok2 || off < 0 || n < 0 {
			return nil, fmt.Errorf("storage view (%v, %v) is not a pair of non-negative ints", v[1], v[2])
		}
		return &storageRef{key: ref.key, dtype: ref.dtype, numel: n, base: off}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("legacy data pickle: %w", err)
	}
	keys, err := unpickle(src, nil)
	if err != nil {
		return nil, fmt.Errorf("legacy storage keys: %w", err)
	}
	kl, ok := keys.(*pyList)
	if !ok {
		return nil, fmt.Errorf("%w: legacy storage keys are a %s, not a list", ErrFormat, typeName(keys))
	}
	pos := src.pos
	for _, k := range kl.items {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("%w: legacy storage key is a %s", ErrFormat, typeName(k))
		}
		rec, ok := records[key]
		if !ok {
			return nil, fmt.Errorf("%w: legacy storage %q is listed but no tensor uses it, so its element size is unknown", ErrFormat, key)
		}
		var hdr [8]byte
		if pos > size-8 {
			return nil, fmt.Errorf("%w: legacy storage %q: file truncated at offset %d", ErrFormat, key, pos)
		}
		if m, err := r.ReadAt(hdr[:], pos); m < len(hdr) {
			return nil, fmt.Errorf("%w: legacy storage %q: %w", ErrFormat, key, err)
		}
		n := int64(binary.LittleEndian.Uint64(hdr[:]))
		es := int64(rec.dtype.ByteSize())
		if n < 0 || n > (size-pos-8)/es {
			return nil, fmt.Errorf("%w: legacy storage %q at offset %d declares %d elements of %s, beyond the end of the %d-byte file",
				ErrFormat, key, pos, n, rec.dtype, size)
		}
		rec.offset, rec.numel = pos+8, n
		pos += 8 + n*es
	}
	d, _, err := pickStateDict(obj, "", 0)
	if err != nil {
		return nil, err
	}
	return loadTensors(d, func(ref *storageRef) ([]byte, error) {
		rec := records[ref.key]
		if rec.numel < 0 {
			return nil, fmt.Errorf("%w: legacy storage %q is not in the storage key list", ErrFormat, ref.key)
		}
		es := int64(ref.dtype.ByteSize())
		buf := make([]byte, rec.numel*es)
		if m, err := r.ReadAt(buf, rec.offset); m < len(buf) {
			return nil, fmt.Errorf("%w: legacy storage %q: %w", ErrFormat, ref.key, err)
		}
		return buf, nil
	})
}
