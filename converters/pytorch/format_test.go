package pytorch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

func load(data []byte) (StateDict, error) { return Load(bytes.NewReader(data), int64(len(data))) }

// TestZipViews checks strided views of shared storages, element by element: a storage of the
// values 0..11 viewed as a matrix, its transpose, a strided slice, a broadcast (stride 0), a
// 0-dim element, an empty view, and half and bool storages.
func TestZipViews(t *testing.T) {
	views := []view{
		{"m", "0", "FloatStorage", 12, 0, []int64{3, 4}, []int64{4, 1}},
		{"mt", "0", "FloatStorage", 12, 0, []int64{4, 3}, []int64{1, 4}},
		{"slice", "0", "FloatStorage", 12, 5, []int64{2}, []int64{3}},
		{"bcast", "0", "FloatStorage", 12, 9, []int64{2, 2}, []int64{0, 1}},
		{"scalar", "0", "FloatStorage", 12, 7, nil, nil},
		{"empty", "0", "FloatStorage", 12, 0, []int64{0, 3}, []int64{3, 1}},
		{"half", "1", "HalfStorage", 3, 1, []int64{2}, []int64{1}},
		{"flags", "2", "BoolStorage", 2, 0, []int64{2}, []int64{1}},
		{"long", "3", "LongStorage", 1, 0, nil, nil},
	}
	p := (&pickler{}).op(opProto, 2).stateDict(views, nil).op(opStop)
	half := binary.LittleEndian.AppendUint16(nil, 0x3c00) // 1
	half = binary.LittleEndian.AppendUint16(half, 0xc000) // -2
	half = binary.LittleEndian.AppendUint16(half, 0x3800) // 0.5
	sd, err := load(torchZip(t, p.b, map[string][]byte{
		"0": iota32(12), "1": half, "2": {0, 1}, "3": binary.LittleEndian.AppendUint64(nil, 42),
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float64{
		"m":      {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
		"mt":     {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11},
		"slice":  {5, 8},
		"bcast":  {9, 10, 9, 10},
		"scalar": {7},
		"empty":  {},
		"half":   {-2, 0.5},
		"flags":  {0, 1},
		"long":   {42},
	}
	wantType := map[string]tensor.DType{"half": tensor.Float16, "flags": tensor.Bool, "long": tensor.Int64}
	for _, v := range views {
		got := sd[v.name]
		if got == nil {
			t.Errorf("%s missing", v.name)
			continue
		}
		dt := tensor.Float32
		if d, ok := wantType[v.name]; ok {
			dt = d
		}
		if got.DType != dt || !slices.Equal([]int64(toInt64(got.Shape)), v.size) && !(len(v.size) == 0 && got.Rank() == 0) {
			t.Errorf("%s: %s %s, want %s %v", v.name, got.DType, got.Shape, dt, v.size)
		}
		if vals := got.Float64s(); !slices.Equal(vals, want[v.name]) {
			t.Errorf("%s = %v, want %v", v.name, vals, want[v.name])
		}
	}
}

func toInt64(s tensor.Shape) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

// TestCheckpointWrappers checks how the state_dict is found in a checkpoint's top-level object.
func TestCheckpointWrappers(t *testing.T) {
	w := view{"w", "0", "FloatStorage", 2, 0, []int64{2}, []int64{1}}
	sdPickle := func(p *pickler) *pickler { return p.stateDict([]view{w}, nil) }
	tests := []struct {
		name  string
		build func(p *pickler)
		err   string // "" for success
	}{
		{"bare", func(p *pickler) { sdPickle(p) }, ""},
		{"state_dict", func(p *pickler) {
			p.op(opEmptyDict, opMark).str("epoch").int(3).str("best_acc").op(opBinfloat, 0x40, 0x58, 0, 0, 0, 0, 0, 0)
			p.str("optimizer").op(opEmptyDict).str("state_dict")
			sdPickle(p).op(opSetitems)
		}, ""},
		{"model", func(p *pickler) { p.op(opEmptyDict).str("model"); sdPickle(p).op(opSetitem) }, ""},
		{"nested", func(p *pickler) {
			p.op(opEmptyDict).str("model").op(opEmptyDict).str("state_dict")
			sdPickle(p).op(opSetitem, opSetitem)
		}, ""},
		{"list", func(p *pickler) { p.op(opEmptyList) }, "holds a list"},
		{"empty", func(p *pickler) { p.op(opEmptyDict) }, "empty dict"},
		{"no state_dict", func(p *pickler) { p.op(opEmptyDict).str("epoch").int(3).op(opSetitem) }, `entries epoch (int)`},
		{"non-tensor entry", func(p *pickler) {
			p.op(opEmptyDict).str("state_dict").op(opEmptyDict, opMark).str("a")
			p.tensor(w, nil).str("note").str("hi").op(opSetitems, opSetitem)
		}, `not a state_dict (entries a (tensor), note (str))`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := (&pickler{}).op(opProto, 2)
			tt.build(p)
			p.op(opStop)
			sd, err := load(torchZip(t, p.b, map[string][]byte{"0": iota32(2)}))
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := sd["w"].Float64s(); !slices.Equal(got, []float64{0, 1}) {
					t.Errorf("w = %v", got)
				}
				return
			}
			if !errors.Is(err, ErrStateDict) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("err = %v, want ErrStateDict containing %q", err, tt.err)
			}
		})
	}
}

// TestMaliciousPickles feeds pickles that would run code if executed, inside a zip checkpoint
// file, and expects the one-line refusal naming the global, before anything is called.
func TestMaliciousPickles(t *testing.T) {
	stackGlobal := func(module, name string) []byte {
		b := []byte{opProto, 4, opShortBinunic, byte(len(module))}
		b = append(b, module...)
		b = append(b, opShortBinunic, byte(len(name)))
		b = append(b, name...)
		return b
	}
	tests := []struct {
		name, global string
		pkl          []byte
	}{
		{"os.system", "posix.system", []byte("\x80\x02cposix\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.")},
		{"nt.system", "nt.system", []byte("cnt\nsystem\n(S'calc'\ntR.")},
		{"builtins.eval", "builtins.eval", append(stackGlobal("builtins", "eval"), opStackGlobal, opShortBinunic, 4, 'p', 'w', 'n', '!', opTuple1, opReduce, opStop)},
		{"nested in a tensor", "subprocess.Popen", (&pickler{}).op(opProto, 2).global("collections", "OrderedDict").op(opEmptyTuple, opReduce).
			str("w").global("subprocess", "Popen").op(opSetitem, opStop).b},
		{"pickled module", "torchvision.models.densenet.DenseNet", (&pickler{}).op(opProto, 2).global("torchvision.models.densenet", "DenseNet").op(opStop).b},
		{"storage module spoof", "torch.load", (&pickler{}).op(opProto, 2).global("torch", "load").op(opStop).b},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "checkpoint.pth")
			if err := os.WriteFile(path, torchZip(t, tt.pkl, nil), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadFile(path)
			want := path + `: pickle global "` + tt.global + `" is not allowed in a state_dict`
			if !errors.Is(err, ErrForbidden) || err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), `pickle global "`+tt.global+`" is not allowed in a state_dict`) {
				t.Errorf("err = %v\nwant %s", err, want)
			}
			// The same pickle as a legacy data pickle is refused the same way.
			if _, err := unpickle(newSource(bytes.NewReader(tt.pkl), 0, int64(len(tt.pkl))), nil); !errors.Is(err, ErrForbidden) {
				t.Errorf("bare pickle: err = %v, want ErrForbidden", err)
			}
		})
	}
}

// TestZipErrors covers damaged or inconsistent zip checkpoints.
func TestZipErrors(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join("testdata", "densenet_ckpt.pth"))
	if err != nil {
		t.Fatal(err)
	}
	one := func(v view) []byte { return (&pickler{}).op(opProto, 2).stateDict([]view{v}, nil).op(opStop).b }
	w := view{"w", "0", "FloatStorage", 12, 0, []int64{3, 4}, []int64{4, 1}}
	with := func(f func(v *view)) view { v := w; f(&v); return v }
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated to half", fixture[:len(fixture)/2], "not a valid zip archive"},
		{"truncated end", fixture[:len(fixture)-10], "not a valid zip archive"},
		{"truncated head", fixture[:30], "not a valid zip archive"},
		{"no data.pkl", zipOf(t, map[string][]byte{"x/version": []byte("3")}), "no <name>/data.pkl record"},
		{"TorchScript", zipOf(t, map[string][]byte{"m/constants.pkl": nil, "m/code/__torch__.py": nil}), "TorchScript archive (torch.jit.save)"},
		{"two data.pkl", zipOf(t, map[string][]byte{"a/data.pkl": nil, "b/data.pkl": nil}), "holds both"},
		{"big-endian", zipOf(t, map[string][]byte{"a/data.pkl": nil, "a/byteorder": []byte("big")}), `byte order "big"`},
		{"missing record", torchZip(t, one(w), nil), "storage record ckpt/data/0 is missing"},
		{"short record", torchZip(t, one(w), map[string][]byte{"0": iota32(11)}), "holds 44 bytes, the pickle declares 12 float32 elements (48 bytes)"},
		{"view past end", torchZip(t, one(with(func(v *view) { v.stride = []int64{5, 1} })), map[string][]byte{"0": iota32(12)}), "reaches past the 12-element storage"},
		{"offset past end", torchZip(t, one(with(func(v *view) { v.offset, v.size, v.stride = 12, []int64{1}, []int64{1} })), map[string][]byte{"0": iota32(12)}), "outside the 12-element storage"},
		{"huge stride", torchZip(t, one(with(func(v *view) { v.stride = []int64{1 << 62, 1} })), map[string][]byte{"0": iota32(12)}), "reaches past"},
		{"huge broadcast", torchZip(t, one(with(func(v *view) { v.size, v.stride = []int64{1 << 30, 4}, []int64{0, 1} })), map[string][]byte{"0": iota32(12)}), "repeats the 12-element storage"},
		{"huge size", torchZip(t, one(with(func(v *view) { v.size = []int64{1 << 40, 1 << 40} })), map[string][]byte{"0": iota32(12)}), "invalid shape"},
		{"rank mismatch", torchZip(t, one(with(func(v *view) { v.stride = []int64{1} })), map[string][]byte{"0": iota32(12)}), "differ in rank"},
		{"bad storage type", torchZip(t, one(with(func(v *view) { v.storageType = "ComplexFloatStorage" })), nil), `"torch.ComplexFloatStorage" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrForbidden) {
				t.Errorf("err = %v wraps neither ErrFormat nor ErrForbidden", err)
			}
		})
	}
}

// TestLegacyViews builds a legacy-format file with a storage view (the sixth persistent-id item)
// and a shared root storage.
func TestLegacyViews(t *testing.T) {
	var f []byte
	f = append(f, (&pickler{}).op(opProto, 2, opLong1, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, opStop).b...)
	f = append(f, (&pickler{}).op(opProto, 2).int(1001).op(opStop).b...)
	f = append(f, (&pickler{}).op(opProto, 2, opEmptyDict).str("little_endian").op(opNewtrue, opSetitem, opStop).b...)
	noView := func(p *pickler) { p.op(opNone) }
	sdp := (&pickler{}).op(opProto, 2)
	sdp.global("collections", "OrderedDict").op(opEmptyTuple, opReduce, opMark)
	sdp.str("a").tensor(view{"a", "root", "FloatStorage", 10, 0, []int64{2, 5}, []int64{5, 1}}, noView)
	sdp.str("b").tensor(view{"b", "root", "FloatStorage", 4, 1, []int64{3}, []int64{1}}, func(p *pickler) {
		p.str("viewkey").int(6).int(4).op(opTuple3) // elements 6..9 of root
	})
	f = append(f, sdp.op(opSetitems, opStop).b...)
	f = append(f, (&pickler{}).op(opProto, 2, opEmptyList).str("root").op(opAppend, opStop).b...)
	f = binary.LittleEndian.AppendUint64(f, 10)
	f = append(f, iota32(10)...)
	sd, err := load(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := sd["a"].Float64s(); !slices.Equal(got, []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("a = %v", got)
	}
	if got := sd["b"].Float64s(); !slices.Equal(got, []float64{7, 8, 9}) {
		t.Errorf("b = %v", got)
	}
	// Every truncation of the file fails cleanly, never panics.
	for n := 0; n < len(f); n++ {
		if _, err := load(f[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(f))
		}
	}
}

// TestMaterializeBounds checks storage views whose bounds would overflow int64.
func TestMaterializeBounds(t *testing.T) {
	raw := iota32(4)
	for _, s := range []storageRef{{key: "a", dtype: tensor.Float32, numel: 1 << 62, base: 1 << 62}, {key: "b", dtype: tensor.Float32, numel: 2, base: 3}, {key: "c", dtype: tensor.Float32, numel: 5}} {
		_, err := materialize(&tensorRef{storage: &s, size: []int64{1}, stride: []int64{1}}, raw)
		if err == nil || !strings.Contains(err.Error(), "exceeds its 4-element record") {
			t.Errorf("storage %+v: err = %v", s, err)
		}
	}
}

func TestLegacyErrors(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join("testdata", "densenet_legacy.pth"))
	if err != nil {
		t.Fatal(err)
	}
	notTorch := (&pickler{}).op(opProto, 2).int(5).op(opStop).b
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated in pickle", fixture[:2000], "pickle is truncated"},
		{"truncated in storages", fixture[:len(fixture)-100], "beyond the end"},
		{"plain pickle", notTorch, "not a torch.save file"},
	}
	for _, tt := range tests {
		_, err := load(tt.data)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want ErrFormat containing %q", tt.name, err, tt.want)
		}
	}
}

// safetensorsFile assembles a safetensors file from a header and data.
func safetensorsFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestSafetensorsErrors(t *testing.T) {
	data := iota32(4)
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"offsets beyond EOF", safetensorsFile(`{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}`, data), "outside the 16 data bytes"},
		{"huge shape", safetensorsFile(`{"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,16]}}`, data), "invalid shape"},
		{"negative dim", safetensorsFile(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,16]}}`, data), "invalid shape"},
		{"size mismatch", safetensorsFile(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}`, data), "hold 16 bytes, but F32 [3] needs 12"},
		{"reversed offsets", safetensorsFile(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}`, data), "data_offsets [8, 4], which end before they begin"},
		{"header past EOF", binary.LittleEndian.AppendUint64(nil, 1<<40), "header length 1099511627776"},
		{"huge header", append(binary.LittleEndian.AppendUint64(nil, 200_000_000), '{'), "header length 200000000"},
		{"bad dtype", safetensorsFile(`{"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}`, data), `unsupported dtype "F8_E4M3"`},
		{"not json", safetensorsFile(`{"w":`, data), "not a JSON object"},
		{"unknown field", safetensorsFile(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"x":1}}`, data), "unknown field"},
		{"one offset", safetensorsFile(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[16]}}`, data), "data_offsets [16]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadSafetensors(bytes.NewReader(tt.file), int64(len(tt.file)))
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrFormat containing %q", err, tt.want)
			}
		})
	}
	ok := safetensorsFile(`{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"e":{"dtype":"I64","shape":[0],"data_offsets":[16,16]}}`, data)
	sd, err := load(ok)
	if err != nil {
		t.Fatal(err)
	}
	if got := sd["w"].Float64s(); !slices.Equal(got, []float64{0, 1, 2, 3}) || sd["e"].Len() != 0 {
		t.Errorf("w = %v, e = %v", got, sd["e"])
	}
}

func TestLoadUnknownFormat(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("hello"), []byte("\x08\x00\x00\x00\x00\x00\x00\x00[1,2,3,4]"), []byte("PK\x01\x02 not really")} {
		if _, err := load(data); !errors.Is(err, ErrFormat) {
			t.Errorf("%q: err = %v, want ErrFormat", data, err)
		}
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "absent.pth")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: err = %v", err)
	}
}
