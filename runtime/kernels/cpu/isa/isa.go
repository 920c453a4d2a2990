// Package isa chooses, once per process, which instruction-set level dnx's CPU kernels run at,
// and says why.
//
// # Levels
//
// A Level names a set of kernels: Generic (plain Go, every CPU and the purego build), AVX2 (Go
// assembly for x86-64 CPUs with AVX2 and FMA) and AVX512 (CPUs that also have AVX-512 F, BW and
// VL). The AVX512 level runs AVX-512 GEMM kernels (package gemm: the micro-kernels, the in-place
// micro-kernel, the matrix-vector kernel and the B packer with its BatchNormalization-ReLU
// prologue, on 32-column panels) and package cpu's Winograd F(4x4) input and output transforms, element-wise
// kernels (Unary's Sigmoid, SiLU, Clip, HardSigmoid and HardSwish; Binary's arithmetic) and
// depthwise convolutions (rows of any kernel size, and whole channels at strides 1 and 2: MobileNet's
// and EfficientNet's depthwise layers),
// max pooling and the 2x2 stride-2 average pool with its BatchNormalization-ReLU prologue
// (DenseNet's transitions); its other kernels (package cpu's Winograd F(2x2) input and output
// transforms, global pooling sums, BatchNormalization and staging kernels) are the AVX2 ones, and Level.Describe and
// Selection.String say so, so that nothing claims to run code that is not there.
//
// # Choice
//
// Selected returns the Selection of this process, made once at start-up from the CPU's features
// (golang.org/x/sys/cpu, which also checks that the OS saves the vector registers), the build
// (the purego tag, or an architecture without assembly, means Generic) and the environment
// variable DNX_CPU, which may force a lower level (generic, avx2 or avx512) to compare or to work
// around a kernel. A DNX_CPU that names a level above what the CPU and build support, or no
// level at all, is not obeyed: the kernels run at the highest supported level, and
// Selection.Err holds the error, which device.Check (and so every dnx command that runs a
// model) reports before running anything. Nothing panics, and nothing prints at start-up.
//
// The kernel packages (cpu, cpu/gemm) turn the selected level into their dispatch tables, one
// immutable table per level, so that tests can run the kernels of every level the machine has
// (Levels) side by side in one process.
package isa

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/cpu"
)

// Level is an instruction-set level of the CPU kernels, ordered: a CPU that runs a level runs
// every lower one.
type Level uint8

// The levels, lowest first.
const (
	// Generic is plain Go: every architecture, and the purego build.
	Generic Level = iota
	// AVX2 is x86-64 Go assembly using AVX2 and FMA (256-bit vectors).
	AVX2
	// AVX512 is an x86-64 CPU with AVX-512 F, BW and VL: AVX-512 F GEMM kernels, AVX2 for the
	// rest (see Describe).
	AVX512
	numLevels
)

var levelNames = [numLevels]string{Generic: "generic", AVX2: "avx2", AVX512: "avx512"}

// String returns the level's name as DNX_CPU spells it: "generic", "avx2" or "avx512".
func (l Level) String() string {
	if l < numLevels {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// Code returns the level whose kernel tables run at l: l itself, now that every level has
// kernels of its own (AVX512's are partly AVX2 code: see Describe).
func (l Level) Code() Level { return l }

// Describe returns l's name and, where some of its kernels are another level's code, which:
// "avx512 (AVX-512 GEMM ... kernels; the other kernels ... are avx2)".
func (l Level) Describe() string {
	if n := codeNote(l); n != "" {
		return l.String() + " (" + n + ")"
	}
	return l.String()
}

// ErrLevel is wrapped by the errors of ParseLevel and of a DNX_CPU that cannot be obeyed.
var ErrLevel = errors.New("unsupported CPU kernel level")

// ParseLevel returns the level named s (as String spells it, in any case).
func ParseLevel(s string) (Level, error) {
	for l, name := range levelNames {
		if strings.EqualFold(strings.TrimSpace(s), name) {
			return Level(l), nil
		}
	}
	return 0, fmt.Errorf("%w %q: want generic, avx2 or avx512", ErrLevel, s)
}

// Features are the CPU features that decide the level, or that later kernels may use (VNNI and
// BF16 are reported only: no kernel uses them yet).
type Features struct {
	AVX2, FMA                       bool
	AVX512F, AVX512BW, AVX512VL     bool
	AVX512VNNI, AVXVNNI, AVX512BF16 bool
}

// detect reads the features of this CPU.
func detect() Features {
	x := &cpu.X86
	return Features{
		AVX2: x.HasAVX2, FMA: x.HasFMA,
		AVX512F: x.HasAVX512F, AVX512BW: x.HasAVX512BW, AVX512VL: x.HasAVX512VL,
		AVX512VNNI: x.HasAVX512VNNI, AVXVNNI: x.HasAVXVNNI, AVX512BF16: x.HasAVX512BF16,
	}
}

// cpuLevel returns the highest level f supports, ignoring the build.
func (f Features) cpuLevel() Level {
	switch {
	case f.AVX2 && f.FMA && f.AVX512F && f.AVX512BW && f.AVX512VL:
		return AVX512
	case f.AVX2 && f.FMA:
		return AVX2
	}
	return Generic
}

// String lists the features present, in lower case: "avx2 fma avx512f ...", or "none".
func (f Features) String() string {
	var out []string
	for _, x := range []struct {
		name string
		has  bool
	}{
		{"avx2", f.AVX2}, {"fma", f.FMA}, {"avx512f", f.AVX512F}, {"avx512bw", f.AVX512BW},
		{"avx512vl", f.AVX512VL}, {"avx512vnni", f.AVX512VNNI}, {"avxvnni", f.AVXVNNI}, {"avx512bf16", f.AVX512BF16},
	} {
		if x.has {
			out = append(out, x.name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " ")
}

// VNNI reports whether the CPU has either form of the int8 dot-product instructions (AVX-512
// VNNI or the VEX-encoded AVX-VNNI).
func (f Features) VNNI() bool { return f.AVX512VNNI || f.AVXVNNI }

// BF16 reports whether the CPU has the AVX-512 bfloat16 instructions.
func (f Features) BF16() bool { return f.AVX512BF16 }

// Source says what decided the selected level.
type Source uint8

const (
	// Detected: the highest level the CPU and build support.
	Detected Source = iota
	// Forced: DNX_CPU named a lower (or the same) level.
	Forced
	// PureGo: the purego build, whose kernels are all plain Go.
	PureGo
	// NoAssembly: an architecture that has no assembly kernels.
	NoAssembly
)

// EnvVar is the environment variable that forces a lower level.
const EnvVar = "DNX_CPU"

// Selection is the level the kernels run at and why.
type Selection struct {
	// Level is the level in use (its kernels are Level.Code()'s).
	Level Level
	// Max is the highest level the CPU and this build support.
	Max Level
	// CPU is the highest level the CPU supports, whatever the build.
	CPU Level
	// Source says what decided Level.
	Source Source
	// Env is DNX_CPU's value (empty when unset).
	Env string
	// Err is set when DNX_CPU cannot be obeyed (no such level, or one above Max); Level is
	// then Max. It wraps ErrLevel.
	Err error
	// Features are the CPU's, as detected.
	Features Features
}

// Reason says, in words, why Level was chosen: "detected", "forced by DNX_CPU=generic; the CPU
// supports avx512", "purego build" or "no assembly kernels for GOARCH=arm64", followed,
// when DNX_CPU was not obeyed, by Err.
func (s Selection) Reason() string {
	var r string
	switch {
	case s.Source == Forced:
		r = fmt.Sprintf("forced by %s=%s; the CPU supports %s", EnvVar, s.Env, s.Max)
	case s.Source == PureGo:
		r = "purego build"
	case s.Source == NoAssembly:
		r = "no assembly kernels for GOARCH=" + runtime.GOARCH
	default:
		r = "detected"
	}
	if s.Err != nil {
		r += "; " + s.Err.Error() + ", ignored"
	}
	return r
}

// String returns the level and why: "avx2 (detected)", "generic (forced by DNX_CPU=generic; the
// CPU supports avx2)", "avx512 (detected; AVX-512 GEMM ... kernels; the other kernels ... are
// avx2)".
func (s Selection) String() string {
	r := s.Reason()
	if n := codeNote(s.Level); n != "" {
		r += "; " + n
	}
	return s.Level.String() + " (" + r + ")"
}

// codeNote says which kernels of a level are another level's code ("" when none).
func codeNote(l Level) string {
	if l == AVX512 {
		return "AVX-512 GEMM and matrix-vector kernels, Winograd F(4x4) input and output transforms, element-wise kernels, depthwise convolutions, max pooling and the 2x2 average pool; the other kernels (Winograd F(2x2) transforms, global pooling, BatchNormalization) are avx2"
	}
	return ""
}

// selected is this process's choice, made once when the package is initialized and never
// written again.
var selected = choose(os.Getenv(EnvVar), detect(), asmBuild, purego)

// Selected returns the level the kernels of this process run at and why. The choice is made
// once, at start-up: changing DNX_CPU later has no effect.
func Selected() Selection { return selected }

// Levels returns the levels this process can run, lowest first: Generic up to the highest level
// the CPU and build support (whatever DNX_CPU says). Tests run the kernels at each of them.
func Levels() []Level {
	out := make([]Level, 0, numLevels)
	for l := Generic; l <= selected.Max; l++ {
		out = append(out, l)
	}
	return out
}

// choose returns the selection for DNX_CPU's value env (empty: unset), the CPU's features f,
// whether the build has assembly kernels (asm) and whether it is the purego build (pg). It
// depends on nothing else, so that tests can try every combination.
func choose(env string, f Features, asm, pg bool) Selection {
	s := Selection{CPU: f.cpuLevel(), Features: f, Source: Detected, Env: env}
	switch {
	case pg:
		s.Source = PureGo
	case !asm:
		s.Source = NoAssembly
	default:
		s.Max = s.CPU
	}
	s.Level = s.Max
	if env == "" {
		return s
	}
	l, err := ParseLevel(env)
	switch {
	case err != nil:
		s.Err = fmt.Errorf("%s=%s: %w", EnvVar, env, err)
	case l > s.Max:
		why := "this CPU supports at most " + s.Max.String()
		if s.Max < s.CPU {
			why = "this build runs " + s.Max.String() + " only"
			if s.Source == PureGo {
				why += " (purego)"
			}
		}
		s.Err = fmt.Errorf("%s=%s: %w %s: %s", EnvVar, env, ErrLevel, l, why)
	default:
		s.Level = l
		if s.Source == Detected {
			s.Source = Forced
		}
	}
	return s
}

// Pick returns the table of level l among a package's kernel tables (avx2 and avx512 nil where
// the build has none): the highest at or below l. It panics when l is above what this CPU and
// build support (Selected().Max): the caller asked for instructions the CPU lacks, and a panic
// here beats an illegal-instruction crash later. pkg names the package in the message.
func Pick[T any](pkg string, l Level, generic, avx2, avx512 *T) *T {
	if l > Selected().Max {
		panic(pkg + ": kernels of level " + l.String() + " requested on a " + Selected().Max.String() + " machine")
	}
	switch {
	case l == AVX512 && avx512 != nil:
		return avx512
	case l >= AVX2 && avx2 != nil:
		return avx2
	}
	return generic
}
