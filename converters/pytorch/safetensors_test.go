package pytorch

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSafetensorsLayout checks the rule the safetensors format sets for data_offsets: sorted by
// offset, the tensors tile the data buffer from its first byte to its last, with no overlap and no
// gap. Each bad case is one that a reader without the rule would accept (every range lies inside
// the data and holds exactly the bytes its dtype and shape need), so the test fails if the rule is
// missing. Data is the float32 values 0..5 (24 bytes).
func TestSafetensorsLayout(t *testing.T) {
	data := iota32(6)
	bad := []struct {
		name   string
		header string
		want   string
	}{
		{"overlap", `{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}`,
			`tensors "a" (data_offsets [0, 16]) and "b" (data_offsets [8, 24]) overlap`},
		{"same range twice", `{"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}`,
			`tensors "a" (data_offsets [0, 24]) and "b" (data_offsets [0, 24]) overlap`},
		{"range nested in another", `{"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`,
			`tensors "a" (data_offsets [0, 24]) and "b" (data_offsets [8, 16]) overlap`},
		{"empty tensor inside another", `{"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},"e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}`,
			`tensor "e" (data_offsets [8, 8]) lies inside tensor "a" (data_offsets [0, 24])`},
		{"hole between tensors", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}`,
			`data bytes [8, 16) between tensors "a" (data_offsets [0, 8]) and "b" (data_offsets [16, 24]) belong to no tensor`},
		{"hole at the start", `{"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}`,
			`data bytes [0, 8) before tensor "a" (data_offsets [8, 24]) belong to no tensor`},
		{"buffer not fully covered", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`,
			`data bytes [16, 24) after tensor "b" (data_offsets [8, 16]) belong to no tensor`},
		{"end before begin", `{"a":{"dtype":"F32","shape":[0],"data_offsets":[24,8]}}`,
			`tensor "a" has data_offsets [24, 8], which end before they begin`},
		{"end past the data", `{"a":{"dtype":"F32","shape":[7],"data_offsets":[0,28]}}`,
			`tensor "a" has data_offsets [0, 28] outside the 24 data bytes`},
		{"byte length not dtype size times elements", `{"a":{"dtype":"F64","shape":[2],"data_offsets":[0,24]}}`,
			`tensor "a": data_offsets [0, 24] hold 24 bytes, but F64 [2] needs 16`},
		{"byte length of a 0-dim tensor", `{"a":{"dtype":"I16","shape":[],"data_offsets":[0,24]}}`,
			`tensor "a": data_offsets [0, 24] hold 24 bytes, but I16 [] needs 2`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			f := safetensorsFile(tt.header, data)
			_, err := ReadSafetensors(bytes.NewReader(f), int64(len(f)))
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant ErrFormat containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}

	// Negative twins: layouts the rule allows. The header's key order does not have to follow the
	// data's, and empty tensors may sit at any tensor boundary, also at the very end.
	good := []struct {
		name   string
		header string
		want   map[string][]float64
	}{
		{"keys in another order than the data", `{"z":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}`,
			map[string][]float64{"z": {0, 1}, "a": {2, 3, 4, 5}}},
		{"empty tensors at the boundaries", `{"e0":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"e1":{"dtype":"I8","shape":[2,0],"data_offsets":[12,12]},"b":{"dtype":"F32","shape":[3],"data_offsets":[12,24]},"e2":{"dtype":"F32","shape":[0],"data_offsets":[24,24]}}`,
			map[string][]float64{"e0": {}, "a": {0, 1, 2}, "e1": {}, "b": {3, 4, 5}, "e2": {}}},
		{"one tensor", `{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}`,
			map[string][]float64{"a": {0, 1, 2, 3, 4, 5}}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			f := safetensorsFile(tt.header, data)
			sd, err := ReadSafetensors(bytes.NewReader(f), int64(len(f)))
			if err != nil {
				t.Fatal(err)
			}
			if len(sd) != len(tt.want) {
				t.Errorf("%d tensors, want %d", len(sd), len(tt.want))
			}
			for name, want := range tt.want {
				if sd[name] == nil {
					t.Errorf("%s missing", name)
				} else if got := sd[name].Float64s(); !slices.Equal(got, want) {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
		})
	}
}

// TestSafetensorsByteLen checks the overflow-checked byte count, including products that wrap
// around uint64 and would otherwise compare equal to a small range.
func TestSafetensorsByteLen(t *testing.T) {
	tests := []struct {
		dims   []int64
		elem   int
		want   uint64
		wantOK bool
	}{
		{nil, 4, 4, true},
		{[]int64{2, 3}, 8, 48, true},
		{[]int64{5, 0, 1 << 62}, 4, 0, true},
		{[]int64{1 << 32, 1 << 32}, 1, 0, false},      // 2^64 wraps to 0
		{[]int64{1 << 62}, 4, 0, false},               // 2^64 wraps to 0
		{[]int64{1<<61 + 1}, 8, 0, false},             // wraps to 8
		{[]int64{1 << 31, 1 << 31}, 2, 1 << 63, true}, // the largest power of two that fits
		{[]int64{1 << 31, 1 << 31}, 4, 0, false},      // 2^64 wraps to 0
	}
	for _, tt := range tests {
		got, ok := safetensorsByteLen(tt.dims, tt.elem)
		if ok != tt.wantOK || ok && got != tt.want {
			t.Errorf("safetensorsByteLen(%v, %d) = %d, %v; want %d, %v", tt.dims, tt.elem, got, ok, tt.want, tt.wantOK)
		}
	}
}

// TestSafetensorsErrorNamesFile checks that a layout error read through LoadFile is one line that
// names the file, the tensors and their ranges.
func TestSafetensorsErrorNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	f := safetensorsFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, iota32(4))
	if err := os.WriteFile(path, f, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	want := path + `: ` + ErrFormat.Error() + `: safetensors tensors "a" (data_offsets [0, 16]) and "b" (data_offsets [8, 16]) overlap`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}
