package pytorch

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"testing"
)

// pickler writes pickle opcodes the way torch.save does (protocol 2), so tests can build
// checkpoints, hostile ones included, without Python.
type pickler struct{ b []byte }

func (p *pickler) op(ops ...byte) *pickler { p.b = append(p.b, ops...); return p }

func (p *pickler) str(s string) *pickler {
	p.b = append(p.b, opBinunicode)
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	p.b = append(p.b, s...)
	return p
}

func (p *pickler) int(v int64) *pickler {
	if v >= math.MinInt32 && v <= math.MaxInt32 {
		p.b = append(p.b, opBinint)
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(int32(v)))
		return p
	}
	p.b = append(p.b, opLong1, 8)
	p.b = binary.LittleEndian.AppendUint64(p.b, uint64(v))
	return p
}

func (p *pickler) global(module, name string) *pickler {
	p.b = append(p.b, opGlobal)
	p.b = append(p.b, module+"\n"+name+"\n"...)
	return p
}

func (p *pickler) ints(v ...int64) *pickler {
	p.op(opMark)
	for _, x := range v {
		p.int(x)
	}
	return p.op(opTuple)
}

// view describes one tensor of a test checkpoint: a strided view of storage key.
type view struct {
	name, key, storageType string
	numel, offset          int64 // storage length (elements), view offset
	size, stride           []int64
}

// tensor writes _rebuild_tensor_v2(pid, offset, size, stride, False, OrderedDict()); pidExtra
// adds items to the persistent id tuple (the legacy format's view metadata).
func (p *pickler) tensor(v view, pidExtra func(p *pickler)) *pickler {
	p.global("torch._utils", "_rebuild_tensor_v2").op(opMark)
	p.op(opMark).str("storage").global("torch", v.storageType).str(v.key).str("cpu").int(v.numel)
	if pidExtra != nil {
		pidExtra(p)
	}
	p.op(opTuple, opBinpersid)
	p.int(v.offset).ints(v.size...).ints(v.stride...)
	p.op(opNewfalse).global("collections", "OrderedDict").op(opEmptyTuple, opReduce)
	return p.op(opTuple, opReduce)
}

// stateDict writes an OrderedDict of the views, with an empty _metadata BUILD as torch does.
func (p *pickler) stateDict(views []view, pidExtra func(p *pickler)) *pickler {
	p.global("collections", "OrderedDict").op(opEmptyTuple, opReduce, opMark)
	for _, v := range views {
		p.str(v.name).tensor(v, pidExtra)
	}
	p.op(opSetitems)
	return p.op(opEmptyDict).str("_metadata").global("collections", "OrderedDict").op(opEmptyTuple, opReduce, opSetitem, opBuild)
}

// zipOf stores the given records, in name order, in a zip archive.
func zipOf(t testing.TB, records map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(records)) {
		f, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(records[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// torchZip packs data.pkl and storage records as torch.save does, under the folder "ckpt".
func torchZip(t testing.TB, pkl []byte, storages map[string][]byte) []byte {
	t.Helper()
	records := map[string][]byte{"ckpt/data.pkl": pkl, "ckpt/version": []byte("3\n")}
	for k, v := range storages {
		records["ckpt/data/"+k] = v
	}
	return zipOf(t, records)
}

// f32bytes encodes float32 values little-endian.
func f32bytes(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// iota32 returns 0, 1, ..., n-1 as little-endian float32 bytes.
func iota32(n int) []byte {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i)
	}
	return f32bytes(v...)
}
