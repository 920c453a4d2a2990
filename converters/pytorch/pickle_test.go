package pytorch

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func unpickleBytes(b []byte) (any, error) {
	return unpickle(newSource(bytes.NewReader(b), 0, int64(len(b))), func(pid any) (any, error) {
		ref, _, err := parseStoragePID(pid, false)
		return ref, err
	})
}

// TestPickleValues checks the scalar and container opcodes against values Python would build.
func TestPickleValues(t *testing.T) {
	magic, _ := new(big.Int).SetString("1950a86a20f9469cfc6c", 16)
	tests := []struct {
		name string
		pkl  []byte
		want string // fmt of the value
	}{
		{"binint", []byte("\x80\x02J\xff\xff\xff\xff."), "-1"},
		{"binint1", []byte("K\xff."), "255"},
		{"binint2", []byte("M\xff\xff."), "65535"},
		{"long1 negative", []byte("\x8a\x02\x00\xff."), "-256"},
		{"long1 empty", []byte("\x8a\x00."), "0"},
		{"long1 magic", []byte("\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."), magic.String()},
		{"long1 big negative", []byte("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\xff."), "-" + new(big.Int).Lsh(big.NewInt(1), 64).String()},
		{"binfloat", []byte("G\x3f\xf8\x00\x00\x00\x00\x00\x00."), "1.5"},
		{"short_binunicode", []byte("\x8c\x03abc."), "abc"},
		{"binunicode8", []byte("\x8d\x01\x00\x00\x00\x00\x00\x00\x00z."), "z"},
		{"short_binbytes", []byte("C\x02hi."), "[104 105]"},
		{"tuple2", []byte("K\x01K\x02\x86."), "[1 2]"},
		{"list appends", []byte("](K\x01K\x02e."), "&{[1 2]}"},
		{"memo", []byte("\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x01a\x94h\x00\x86."), "[a a]"},
		{"dup and pop", []byte("K\x012K\x030\x86."), "[1 1]"},
		{"pop mark", []byte("K\x07(K\x01K\x021."), "7"},
		{"bools none", []byte("\x88\x89N\x87."), "[true false {}]"},
		{"frozenset", []byte("(K\x01\x91."), "&{[1]}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := unpickleBytes(tt.pkl)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(fmtValue(v)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func fmtValue(v any) string {
	if b, ok := v.(*big.Int); ok {
		return b.String()
	}
	return fmt.Sprint(v)
}

// TestPickleMalformed feeds broken pickles; each must fail with ErrFormat and a message naming
// the problem, never panic.
func TestPickleMalformed(t *testing.T) {
	tests := []struct {
		name string
		pkl  []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"no stop", []byte("\x80\x02K\x01"), "truncated"},
		{"stop on empty stack", []byte("."), "stack underflow"},
		{"protocol 6", []byte("\x80\x06."), "protocol 6"},
		{"underflow", []byte("\x85."), "stack underflow"},
		{"pop below mark", []byte("K\x01(\x85."), "stack underflow"},
		{"unknown memo", []byte("h\x05."), "memo key 5"},
		{"memoize empty", []byte("\x94."), "stack underflow"},
		{"huge string", []byte("X\xff\xff\xff\xff"), "exceeds the limit"},
		{"huge bytes8", []byte("\x8e\xff\xff\xff\xff\xff\xff\xff\xff"), "exceeds the limit"},
		{"string past end", []byte("X\x10\x00\x00\x00abc"), "truncated"},
		{"huge long4", []byte("\x8b\xff\xff\xff\x7f"), "exceeds the limit"},
		{"odd setitems", []byte("}(K\x01u."), "odd number"},
		{"setitems on list", []byte("](K\x01K\x02u."), "set items of a list"},
		{"append to dict", []byte("}K\x01a."), "append to a dict"},
		{"unhashable key", []byte("}]K\x01s."), "dict key of type list"},
		{"text opcode", []byte("I1\n."), "opcode not supported"},
		{"ext opcode", []byte("\x82\x01."), "opcode not supported"},
		{"long global line", append([]byte("c"), bytes.Repeat([]byte("a"), 300)...), "GLOBAL line longer"},
		{"stack_global types", []byte("K\x01K\x02\x93."), "STACK_GLOBAL needs two str"},
		{"call non-global", []byte("K\x01)R."), "call of a int"},
		{"call with list", []byte("ccollections\nOrderedDict\n]R."), "want a tuple"},
		{"call storage class", []byte("ctorch\nFloatStorage\n)R."), "not callable"},
		{"rebuild arity", []byte("ctorch._utils\n_rebuild_tensor_v2\n)R."), "0 arguments"},
		{"rebuild non-storage", []byte("ctorch._utils\n_rebuild_tensor_v2\n(K\x00K\x00)))\x89NtR."), "storage argument is a int"},
		{"parameter of int", []byte("ctorch._utils\n_rebuild_parameter\n(K\x01\x89NtR."), "want a tensor"},
		{"build on list", []byte("]}b."), "BUILD on a list"},
		{"newobj_ex kwargs", []byte("ccollections\nOrderedDict\n)}K\x01K\x02s\x92."), "keyword arguments"},
		{"persid not tuple", []byte("K\x01Q."), "persistent id is a int"},
		{"persid kind", []byte("(X\x03\x00\x00\x00fooctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQ."), "kind foo"},
		{"persid numel", []byte("(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ\xff\xff\xff\xfftQ."), "element count -1"},
		{"ordered dict items", []byte("ccollections\nOrderedDict\n]K\x01a\x85R."), "want a (key, value) tuple"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := unpickleBytes(tt.pkl)
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrFormat containing %q", err, tt.want)
			}
		})
	}
}

// TestPickleLimits drives the stack, MARK and memo caps with minimal pickles.
func TestPickleLimits(t *testing.T) {
	tests := []struct {
		name string
		pkl  []byte
		want string
	}{
		{"stack", bytes.Repeat([]byte("N"), maxPickleStack+1), "stack exceeds"},
		{"marks", bytes.Repeat([]byte("("), maxPickleMarks+1), "nested MARKs"},
		{"memo", append([]byte("N"), bytes.Repeat([]byte{opMemoize}, maxPickleMemo+1)...), "memo exceeds"},
	}
	for _, tt := range tests {
		_, err := unpickleBytes(tt.pkl)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want ErrFormat containing %q", tt.name, err, tt.want)
		}
	}
}

// fuzzSeeds returns the fixture checkpoints and small crafted pickles.
func fuzzSeeds(t testing.TB) (files, pickles [][]byte) {
	for _, fx := range fixtures {
		b, err := os.ReadFile(filepath.Join("testdata", fx.file))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	zr, err := zip.NewReader(bytes.NewReader(files[0]), int64(len(files[0])))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/data.pkl") {
			b, err := readRecord(f, maxDataPickle, int64(len(files[0])))
			if err != nil {
				t.Fatal(err)
			}
			pickles = append(pickles, b)
		}
	}
	w := view{"w", "0", "FloatStorage", 12, 1, []int64{3, 2}, []int64{1, 3}}
	pickles = append(pickles,
		(&pickler{}).op(opProto, 2).stateDict([]view{w}, nil).op(opStop).b,
		[]byte("\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03."),
		[]byte("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94K\x01\x8c\x01b\x94]\x94(K\x02G?\xf0\x00\x00\x00\x00\x00\x00eu."))
	return files, pickles
}

// FuzzPickle runs arbitrary bytes through the restricted unpickler and, when a state_dict comes
// out, through tensor materialization with zero-filled storages. Nothing may panic, and no
// forbidden global may ever be accepted.
func FuzzPickle(f *testing.F) {
	_, pickles := fuzzSeeds(f)
	for _, p := range pickles {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := unpickleBytes(data)
		if err != nil {
			return
		}
		d, _, err := pickStateDict(v, "", 0)
		if err != nil {
			return
		}
		_, _ = loadTensors(d, func(ref *storageRef) ([]byte, error) {
			n := ref.numel * int64(ref.dtype.ByteSize())
			if ref.base != 0 || n > 1<<20 {
				return nil, errors.New("storage too large for the fuzzer")
			}
			return make([]byte, n), nil
		})
	})
}

// FuzzLoad runs arbitrary bytes through Load: zip, legacy and safetensors parsing. Nothing may
// panic.
func FuzzLoad(f *testing.F) {
	files, _ := fuzzSeeds(f)
	for _, b := range files {
		f.Add(b)
	}
	f.Add(safetensorsFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, iota32(2)))
	f.Fuzz(func(t *testing.T, data []byte) {
		sd, err := load(data)
		if err != nil {
			return
		}
		for k, x := range sd {
			if x == nil || len(x.Float64s()) != x.Shape.Size() {
				t.Fatalf("%q: inconsistent tensor", k)
			}
		}
	})
}
