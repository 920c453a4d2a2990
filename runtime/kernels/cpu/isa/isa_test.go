package isa

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestChoose covers the choice for each kind of CPU, build and DNX_CPU value: the level, its
// source, whether DNX_CPU is refused, and words the reason must contain.
func TestChoose(t *testing.T) {
	none := Features{}
	avx2 := Features{AVX2: true, FMA: true}
	avx2NoFMA := Features{AVX2: true}
	zen5 := Features{AVX2: true, FMA: true, AVX512F: true, AVX512BW: true, AVX512VL: true, AVX512VNNI: true, AVXVNNI: true, AVX512BF16: true}
	avx512FOnly := Features{AVX2: true, FMA: true, AVX512F: true} // no BW/VL: not the avx512 level
	for _, tc := range []struct {
		name     string
		env      string
		f        Features
		asm, pg  bool
		level    Level
		source   Source
		err      bool
		reason   string // a substring of Reason()
		str      string // a substring of String()
		maxLevel Level
	}{
		{name: "no SIMD", f: none, asm: true, level: Generic, source: Detected, reason: "detected", maxLevel: Generic},
		{name: "avx2", f: avx2, asm: true, level: AVX2, source: Detected, reason: "detected", str: "avx2 (detected)", maxLevel: AVX2},
		{name: "avx2 without fma", f: avx2NoFMA, asm: true, level: Generic, source: Detected, maxLevel: Generic},
		{name: "avx512f without bw/vl", f: avx512FOnly, asm: true, level: AVX2, source: Detected, maxLevel: AVX2},
		{name: "zen5", f: zen5, asm: true, level: AVX512, source: Detected, str: "AVX-512 GEMM and matrix-vector kernels, Winograd F(4x4) input and output transforms, element-wise kernels, depthwise convolutions, max pooling and the 2x2 average pool; the other kernels", maxLevel: AVX512},
		{name: "zen5 forced avx2", env: "avx2", f: zen5, asm: true, level: AVX2, source: Forced, reason: "forced by DNX_CPU=avx2; the CPU supports avx512", maxLevel: AVX512},
		{name: "zen5 forced generic, any case", env: " Generic", f: zen5, asm: true, level: Generic, source: Forced, reason: "DNX_CPU= Generic", maxLevel: AVX512},
		{name: "zen5 forced to itself", env: "avx512", f: zen5, asm: true, level: AVX512, source: Forced, maxLevel: AVX512},
		{name: "avx2 asked avx512", env: "avx512", f: avx2, asm: true, level: AVX2, source: Detected, err: true, reason: "this CPU supports at most avx2", maxLevel: AVX2},
		{name: "unknown level", env: "sse4", f: zen5, asm: true, level: AVX512, source: Detected, err: true, reason: `"sse4": want generic, avx2 or avx512`, maxLevel: AVX512},
		{name: "purego", f: zen5, pg: true, level: Generic, source: PureGo, reason: "purego build", maxLevel: Generic},
		{name: "purego asked generic", env: "generic", f: zen5, pg: true, level: Generic, source: PureGo, reason: "purego build", maxLevel: Generic},
		{name: "purego asked avx2", env: "avx2", f: zen5, pg: true, level: Generic, source: PureGo, err: true, reason: "this build runs generic only (purego)", maxLevel: Generic},
		{name: "other architecture", f: none, level: Generic, source: NoAssembly, reason: "no assembly kernels for GOARCH=", maxLevel: Generic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := choose(tc.env, tc.f, tc.asm, tc.pg)
			if s.Level != tc.level || s.Source != tc.source || s.Max != tc.maxLevel {
				t.Errorf("level %s source %d max %s, want %s %d %s", s.Level, s.Source, s.Max, tc.level, tc.source, tc.maxLevel)
			}
			if (s.Err != nil) != tc.err || (s.Err != nil && !errors.Is(s.Err, ErrLevel)) {
				t.Errorf("Err = %v, want an ErrLevel: %v", s.Err, tc.err)
			}
			if s.Err != nil && !strings.Contains(s.Err.Error(), "DNX_CPU="+tc.env) {
				t.Errorf("Err = %v does not name DNX_CPU=%s", s.Err, tc.env)
			}
			if !strings.Contains(s.Reason(), tc.reason) {
				t.Errorf("Reason() = %q, want it to contain %q", s.Reason(), tc.reason)
			}
			if !strings.Contains(s.String(), tc.str) || !strings.HasPrefix(s.String(), s.Level.String()+" (") {
				t.Errorf("String() = %q, want it to start with the level and contain %q", s.String(), tc.str)
			}
			if s.Level > s.Max {
				t.Errorf("level %s above the maximum %s", s.Level, s.Max)
			}
		})
	}
}

func TestLevelNames(t *testing.T) {
	for l := Generic; l < numLevels; l++ {
		got, err := ParseLevel(strings.ToUpper(l.String()))
		if err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %s, %v", l, got, err)
		}
	}
	if _, err := ParseLevel("avx"); !errors.Is(err, ErrLevel) {
		t.Errorf("ParseLevel(avx) = %v, want ErrLevel", err)
	}
	if AVX512.Code() != AVX512 || AVX2.Code() != AVX2 || Generic.Code() != Generic {
		t.Error("Code: every level runs its own tables")
	}
	if d := AVX512.Describe(); !strings.Contains(d, "AVX-512 GEMM and matrix-vector kernels, Winograd F(4x4) input and output transforms, element-wise kernels, depthwise convolutions, max pooling and the 2x2 average pool;") ||
		!strings.Contains(d, "(Winograd F(2x2) transforms, global pooling, BatchNormalization) are avx2") {
		t.Errorf("AVX512.Describe() = %q does not say which kernels are AVX-512 and which avx2", d)
	}
	if d := AVX2.Describe(); d != "avx2" {
		t.Errorf("AVX2.Describe() = %q, want avx2", d)
	}
}

// TestSelected checks this process's choice against what the machine has, and logs it.
func TestSelected(t *testing.T) {
	_ = os.Getenv(EnvVar) // read at init, before go test logs what a test reads: keys the cache
	s := Selected()
	t.Logf("selected: %s; features: %s; levels: %v", s, s.Features, Levels())
	if s.Level > s.Max || s.Max > s.CPU {
		t.Errorf("level %s, max %s, cpu %s: not ordered", s.Level, s.Max, s.CPU)
	}
	ls := Levels()
	if len(ls) == 0 || ls[0] != Generic || ls[len(ls)-1] != s.Max {
		t.Errorf("Levels() = %v, want generic .. %s", ls, s.Max)
	}
	if purego && s.Max != Generic {
		t.Errorf("purego build at %s", s.Max)
	}
}
