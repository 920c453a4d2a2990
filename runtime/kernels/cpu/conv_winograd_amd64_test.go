//go:build amd64 && !purego

package cpu

import (
	"testing"
	"unsafe"
)

// TestWinoInLayout checks the field offsets of winoIn that conv_winograd_amd64.s uses.
func TestWinoInLayout(t *testing.T) {
	var a winoIn
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"t", unsafe.Offsetof(a.t), 0}, {"ldt", unsafe.Offsetof(a.ldt), 8},
		{"x", unsafe.Offsetof(a.x), 16}, {"xstep", unsafe.Offsetof(a.xstep), 64},
		{"keep", unsafe.Offsetof(a.keep), 112}, {"ulo", unsafe.Offsetof(a.ulo), 136},
		{"n", unsafe.Offsetof(a.n), 144}, {"cin", unsafe.Offsetof(a.cin), 152},
		{"scale", unsafe.Offsetof(a.scale), 160}, {"shift", unsafe.Offsetof(a.shift), 168},
		{"relu", unsafe.Offsetof(a.relu), 176}, {"tiles", unsafe.Offsetof(a.tiles), 184},
		{"v", unsafe.Offsetof(a.v), 192}, {"ps", unsafe.Offsetof(a.ps), 200},
		{"ldv", unsafe.Offsetof(a.ldv), 208}, {"mask", unsafe.Offsetof(a.mask), 216},
		{"prefetch", unsafe.Offsetof(a.prefetch), 248},
	} {
		if f.got != f.want {
			t.Errorf("winoIn.%s at offset %d, the assembly reads it at %d", f.name, f.got, f.want)
		}
	}
}
