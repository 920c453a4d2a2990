package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/kasm"
	"github.com/dnx-ml/dnx/runtime/kernels/cpu/internal/winoasm"
)

// The tests in this file run the AVX-512 Winograd input transforms as package winoasm describes
// them (winoasm.In) in the kasm interpreter, on every machine, against winoInExact, and against
// the generated assembly where the CPU has AVX-512 (winoInHW, conv_winograd_kasm_amd64_test.go).

// TestWinoIn512Layout: the block winoIn512Fill writes is the layout the kernels read.
func TestWinoIn512Layout(t *testing.T) {
	var b winoIn512
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"ldt", unsafe.Offsetof(b.ldt), winoasm.InLdt}, {"xstep", unsafe.Offsetof(b.xstep), winoasm.InXStep},
		{"nu", unsafe.Offsetof(b.nu), winoasm.InNU}, {"cin", unsafe.Offsetof(b.cin), winoasm.InCin},
		{"tiles", unsafe.Offsetof(b.tiles), winoasm.InTiles}, {"ps", unsafe.Offsetof(b.ps), winoasm.InPS},
		{"ldv", unsafe.Offsetof(b.ldv), winoasm.InLdv}, {"sstep", unsafe.Offsetof(b.sstep), winoasm.InSStep},
		{"pro", unsafe.Offsetof(b.pro), winoasm.InPro}, {"prefetch", unsafe.Offsetof(b.prefetch), winoasm.InPrefetch},
		{"colk", unsafe.Offsetof(b.colk), winoasm.InColK}, {"tilek", unsafe.Offsetof(b.tilek), winoasm.InTileK},
		{"rowk", unsafe.Offsetof(b.rowk), winoasm.InRowK}, {"xkeep", unsafe.Offsetof(b.xkeep), winoasm.InXKeep},
		{"xoff", unsafe.Offsetof(b.xoff), winoasm.InXOff}, {"soff", unsafe.Offsetof(b.soff), winoasm.InSOff},
		{"voff", unsafe.Offsetof(b.voff), winoasm.InVOff}, {"floor", unsafe.Offsetof(b.floor), winoasm.InFloor},
		{"four", unsafe.Offsetof(b.four), winoasm.InFour}, {"mfour", unsafe.Offsetof(b.mfour), winoasm.InMFour},
		{"one", unsafe.Offsetof(b.one), winoasm.InOne}, {"zero", unsafe.Offsetof(b.zero), winoasm.InZero},
		{"perm", unsafe.Offsetof(b.perm), winoasm.InPerm},
	} {
		if f.got != f.want {
			t.Errorf("winoIn512.%s at offset %d, the kernel reads it at %d", f.name, f.got, f.want)
		}
	}
	if unsafe.Sizeof(b) < winoasm.InSize {
		t.Errorf("winoIn512 has %d bytes, the kernel reads %d", unsafe.Sizeof(b), winoasm.InSize)
	}
	for _, m := range []int{2, 4} {
		if winoIn512Perm(m) != winoasm.InPermFor(m) {
			t.Errorf("F(%d): winoIn512Perm %v, winoasm.InPermFor %v", m, winoIn512Perm(m), winoasm.InPermFor(m))
		}
	}
}

// bt4Exact is B^T d for F(4x4) with the operations of winoInput4AVX2 and winoIn4AVX512, in their
// order (kasm.FMA32 for the fused multiply-adds).
func bt4Exact(d0, d1, d2, d3, d4, d5 float32) [6]float32 {
	a, b := d4-d2, d1-d3
	t0 := kasm.FMA32(d0-d2, 4, a)
	t5 := kasm.FMA32(b, 4, d5-d3)
	b2 := b + b
	c := kasm.FMA32(d2, -4, d4)
	e := d1*4 - d3
	return [6]float32{t0, c - e, c + e, a - b2, a + b2, t5}
}

// inCase is one call of the input transform (the arguments of winoInputGo for one segment).
type inCase struct {
	m, cin, nu, ulo, n, wt, ps, ldv, hw int
	off                                 [6]int
	scaled, relu, pro, prefetch         bool
}

func (c inCase) String() string {
	return fmt.Sprintf("F(%d) cin=%d nu=%d ulo=%d n=%d off=%v scaled=%v pro=%v relu=%v", c.m, c.cin, c.nu, c.ulo, c.n, c.off[:c.m+2], c.scaled, c.pro, c.relu)
}

// inCases covers both tile sizes: every tile count to 18 and 33 (pair mode, full groups and
// their tails), column counts below and above 16 (the masked column group, the backed-up last
// group), segments starting at column 1 (left padding), rows of padding at the top and bottom,
// and the prologue with a scale per channel, with a ReLU alone, and none.
func inCases() []inCase {
	var cs []inCase
	i := 0
	for _, m := range []int{4, 2} {
		alpha := m + 2
		for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 9, 12, 14, 15, 16, 17, 18, 33} {
			for _, nrowExtra := range []int{0, 3} {
				i++
				c := inCase{m: m, cin: 1 + i%3, n: n + nrowExtra, ulo: i % 2}
				// The input columns of n tiles: m*n + 2, less the left padding, less one or two at
				// the right edge.
				c.nu = max(1, m*n+2-c.ulo-(i/2)%3)
				c.wt = m*(c.n+24+8) + 4
				w := c.nu + 5
				c.hw = (alpha-1)*w + 1 + max(c.nu, 16) // reading past what the wrapper allows faults
				for r := range c.off {
					c.off[r] = r*w + 1
				}
				switch i % 4 {
				case 1:
					c.off[0] = -1
				case 2:
					c.off[alpha-1], c.off[alpha-2] = -1, -1
				}
				c.ldv = c.n + 8 + i%5
				c.ps = c.cin*c.ldv + 3
				switch i % 3 {
				case 0:
					c.scaled, c.pro, c.relu = true, true, i%2 == 0
				case 1:
					c.pro, c.relu = true, true
				}
				c.prefetch = i%5 == 0
				cs = append(cs, c)
			}
		}
		// Short rows with padding above and below, under a scale per channel: a padding row's
		// prologue must stay masked (0*scale + shift is not 0).
		for j, n := range []int{1, 3} {
			c := inCase{m: m, cin: 2, n: n, ulo: 1, nu: m*n + 1, scaled: true, pro: true, relu: j == 1}
			c.wt = m*(n+32) + 4
			w := c.nu + 3
			for r := range c.off {
				c.off[r] = r*w + 1
			}
			c.off[j*(alpha-1)] = -1
			c.hw = (alpha-1)*w + 1 + max(c.nu, 16)
			c.ldv = n + 9
			c.ps = 2*c.ldv + 5
			cs = append(cs, c)
		}
	}
	return cs
}

// inData is the memory of one case: input planes, the prologue, transform rows (with T's
// columns outside the input zero, as inputSegment leaves them, up to the row pass's reach, and
// NaN past it) and V.
type inData struct {
	item, scale, shift, rows, v []float32
	zeros                       []float32 // the row of zeros: nu of them, then NaN to 16
}

func newInData(r *rand.Rand, c inCase) inData {
	alpha := c.m + 2
	d := inData{item: randFloats(r, c.cin*c.hw), scale: randFloats(r, c.cin), shift: randFloats(r, c.cin)}
	d.rows = make([]float32, winoIn512Reads(c.m, alpha, c.wt, c.ulo, c.nu, c.n))
	nan := float32(math.NaN())
	for i := range d.rows {
		if i%c.wt > c.m*c.n+1 {
			d.rows[i] = nan
		}
	}
	d.v = randFloats(r, (alpha*alpha-1)*c.ps+(c.cin-1)*c.ldv+winoIn512Writes(c.n))
	d.zeros = make([]float32, max(c.nu, 16))
	for i := c.nu; i < len(d.zeros); i++ {
		d.zeros[i] = nan
	}
	return d
}

// overrun reports whether float i of V lies past the n tiles of its row where the kernels may
// write (winoIn512Writes): what they leave there is not checked.
func (c inCase) overrun(i int) bool {
	alpha := c.m + 2
	for p := 0; p < alpha*alpha; p++ {
		for ch := 0; ch < c.cin; ch++ {
			if j := i - p*c.ps - ch*c.ldv; j >= c.n && j < winoIn512Writes(c.n) {
				return true
			}
		}
	}
	return false
}

// vMatch is bitsMatch for V, skipping the overrun.
func vMatch(what string, c inCase, got, want []float32) error {
	g, w := append([]float32(nil), got...), append([]float32(nil), want...)
	for i := range g {
		if c.overrun(i) {
			g[i], w[i] = 0, 0
		}
	}
	return bitsMatch(what, g, w)
}

func (d inData) clone() inData {
	cp := func(s []float32) []float32 { return append([]float32(nil), s...) }
	return inData{cp(d.item), cp(d.scale), cp(d.shift), cp(d.rows), cp(d.v), cp(d.zeros)}
}

// winoInExact is winoInputGo with the operations of the AVX-512 kernels in their order: the
// prologue as one FMA and max(floor, x) (none without a scale or ReLU), then bt4Exact or the
// F(2x2) differences.
func winoInExact(c inCase, d inData) {
	m, alpha := c.m, c.m+2
	floor := float32(math.Inf(-1))
	if c.relu {
		floor = 0
	}
	for ch := 0; ch < c.cin; ch++ {
		sc, sh := float32(1), float32(0)
		if c.scaled {
			sc, sh = d.scale[ch], d.shift[ch]
		}
		for u := 0; u < c.nu; u++ {
			var x [6]float32
			for r := 0; r < alpha; r++ {
				if c.off[r] < 0 {
					continue
				}
				x[r] = d.item[ch*c.hw+c.off[r]+u]
				if c.pro {
					x[r] = kasm.FMA32(x[r], sc, sh)
					if floor > x[r] {
						x[r] = floor
					}
				}
			}
			var t [6]float32
			if m == 4 {
				t = bt4Exact(x[0], x[1], x[2], x[3], x[4], x[5])
			} else {
				t[0], t[1], t[2], t[3] = x[0]-x[2], x[1]+x[2], x[2]-x[1], x[1]-x[3]
			}
			for i := 0; i < alpha; i++ {
				d.rows[i*c.wt+c.ulo+u] = t[i]
			}
		}
		// Under 16 columns the kernels store 16, +0 past the input (where T is 0 already).
		for u := c.nu; u < 16; u++ {
			for i := 0; i < alpha; i++ {
				d.rows[i*c.wt+c.ulo+u] = 0
			}
		}
		for i := 0; i < alpha; i++ {
			ti := d.rows[i*c.wt:]
			for j := 0; j < c.n; j++ {
				s := ti[m*j:]
				var o [6]float32
				if m == 4 {
					o = bt4Exact(s[0], s[1], s[2], s[3], s[4], s[5])
				} else {
					o[0], o[1], o[2], o[3] = s[0]-s[2], s[1]+s[2], s[2]-s[1], s[1]-s[3]
				}
				for k := 0; k < alpha; k++ {
					d.v[(i*alpha+k)*c.ps+ch*c.ldv+j] = o[k]
				}
			}
		}
	}
}

// inBlock returns the argument block of c, as winoInputAsm512 fills it.
func inBlock(c inCase) winoIn512 {
	var keep [6]bool
	for r := 0; r < c.m+2; r++ {
		keep[r] = c.off[r] >= 0
	}
	var b winoIn512
	winoIn512Fill(&b, c.m, c.nu, c.n, c.cin, c.hw, c.wt, c.ps, c.ldv, keep, c.scaled, c.pro, c.relu, c.prefetch)
	return b
}

// runIn runs the description f on c in the interpreter, each slice mapped exactly so that an
// access outside it faults.
func runIn(f *kasm.Func, c inCase, d inData) error {
	bs := []winoIn512{inBlock(c)}
	var mem kasm.Memory
	mach := &kasm.Machine{Mem: &mem, MaxSteps: 1 << 24}
	for i := range mach.V {
		for l := range mach.V[i] {
			mach.V[i][l] = math.Float32bits(float32(i*16+l) + 0.5)
		}
	}
	item := mem.Map("item", kasm.Bytes(d.item))
	rows := mem.Map("rows", kasm.Bytes(d.rows))
	scale, shift := mem.Map("scale", kasm.Bytes(d.scale)), mem.Map("shift", kasm.Bytes(d.shift))
	v := mem.Map("v", kasm.Bytes(d.v))
	zeros := mem.Map("zeros", kasm.Bytes(d.zeros))
	b := mem.Map("b", kasm.Bytes(bs))
	if !c.scaled {
		scale, shift = b+winoasm.InOne, b+winoasm.InZero
	}
	args := []uint64{rows + 4*uint64(c.ulo), rows}
	for r := 0; r < 6; r++ {
		x := zeros
		if r < c.m+2 && c.off[r] >= 0 {
			x = item + 4*uint64(c.off[r])
		}
		args = append(args, x)
	}
	args = append(args, scale, shift, v, b)
	return mach.Run(f, args...)
}

// checkIn runs f on every case and returns the first disagreement with winoInExact (bit for
// bit, in T and V, everything else left as it was) or with the hardware (hw: the assembly on the
// same case, when not nil).
func checkIn(f func(m int) *kasm.Func, hw func(c inCase, d inData)) error {
	r := rand.New(rand.NewPCG(51, 52))
	for _, c := range inCases() {
		d0 := newInData(r, c)
		got := d0.clone()
		if err := runIn(f(c.m), c, got); err != nil {
			return fmt.Errorf("%v: %v", c, err)
		}
		want := d0.clone()
		winoInExact(c, want)
		if err := bitsMatch("interpreter T rows", got.rows, want.rows); err != nil {
			return fmt.Errorf("%v: %v", c, err)
		}
		if err := vMatch("interpreter V", c, got.v, want.v); err != nil {
			return fmt.Errorf("%v: %v", c, err)
		}
		if hw != nil {
			h := d0.clone()
			hw(c, h)
			if err := bitsMatch("hardware vs interpreter T rows", h.rows, got.rows); err != nil {
				return fmt.Errorf("%v: %v", c, err)
			}
			if err := vMatch("hardware vs interpreter V", c, h.v, got.v); err != nil {
				return fmt.Errorf("%v: %v", c, err)
			}
		}
	}
	return nil
}

// TestWinoIn512Interpreted runs the descriptions of winoIn4AVX512 and winoIn2AVX512 on every
// case bit for bit against winoInExact, and against the hardware where the CPU has AVX-512 (the
// log says whether that ran); winoInExact itself is checked against winoInputGo, the
// specification, within rounding.
func TestWinoIn512Interpreted(t *testing.T) {
	hw := winoInHW()
	if hw != nil {
		t.Log("AVX-512 assembly checked against the interpreter on this CPU")
	} else {
		t.Log("no AVX-512 here: the interpreter only (the assembly is not run)")
	}
	if err := checkIn(winoasm.In, hw); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(53, 54))
	for _, c := range inCases() {
		d := newInData(r, c)
		got, want := d.clone(), d.clone()
		winoInExact(c, got)
		spec := ConvSpec{Cin: c.cin, Cout: 1, KH: 3, KW: 3, PreRelu: c.relu && c.pro}
		if c.scaled {
			spec.PreScale, spec.PreShift = want.scale, want.shift
		}
		f := &winoForm{c: &Conv2D{spec: spec}, m: c.m, alpha: c.m + 2}
		zeros := make([]float32, c.nu)
		winoInputGo(f, want.item, c.hw, c.off, zeros, c.ulo, c.nu, c.n, want.v, c.ps, c.ldv, want.rows, c.wt, 0, c.cin)
		for i := range want.v {
			if c.overrun(i) {
				continue
			}
			// |V| is at most 10*10 times max |pre(x)|, about 5 here.
			if math.Abs(float64(got.v[i]-want.v[i])) > 1e-5*(1+500) {
				t.Fatalf("%v: V[%d]: exact-order reference %g, winoInputGo %g", c, i, got.v[i], want.v[i])
			}
		}
	}
}

// TestWinoIn512CatchesBugs plants bugs in the descriptions and requires checkIn to catch each.
func TestWinoIn512CatchesBugs(t *testing.T) {
	find := func(f *kasm.Func, nth int, match func(kasm.Inst) bool) int { return plantAt(t, f, nth, match) }
	op := isOp
	bugs := []struct {
		name  string
		plant func(f *kasm.Func)
	}{
		{"lanes past nu kept (no prologue)", func(f *kasm.Func) {
			i := find(f, 0, func(in kasm.Inst) bool { return in.Op == kasm.VMOVUPS && in.Zeroing })
			f.Body = append(f.Body[:i], f.Body[i+1:]...)
		}},
		{"prologue FMA unmasked", func(f *kasm.Func) {
			i := find(f, 0, op(kasm.VFMADD213PS))
			f.Body[i].Mask, f.Body[i].Zeroing = kasm.Reg{}, false
		}},
		{"no ReLU", func(f *kasm.Func) {
			i := find(f, 1, op(kasm.VMAXPS))
			f.Body = append(f.Body[:i], f.Body[i+1:]...)
		}},
		{"tile tail stores unmasked", func(f *kasm.Func) {
			// The full-mode tail group's first store, after its first VPERMPS (the full group's
			// alpha come first).
			j := find(f, alphaOf(f), op(kasm.VPERMPS))
			f.Body[j+1].Mask = kasm.Reg{}
		}},
		{"wrong permutation", func(f *kasm.Func) {
			i := find(f, 2, op(kasm.VPERMPS))
			f.Body[i].Args[1] = f.Body[i].Args[0]
		}},
		{"no back-up group", func(f *kasm.Func) {
			i := find(f, 0, func(in kasm.Inst) bool { return in.Op == kasm.CMPQ && in.Args[1] == kasm.Operand(kasm.Imm(-16)) })
			f.Body[i+1].Op = kasm.JMP
		}},
		{"channel stride of V lost", func(f *kasm.Func) {
			i := find(f, 0, func(in kasm.Inst) bool {
				m, ok := in.Args[0].(kasm.Mem)
				return in.Op == kasm.MOVQ && ok && m.Disp == winoasm.InLdv
			})
			f.Body[i].Args[0] = kasm.At(winoasm.InSStep, kasm.DX)
		}},
		{"one T row pair too few", func(f *kasm.Func) {
			i := find(f, 0, func(in kasm.Inst) bool {
				m, ok := in.Args[0].(kasm.Mem)
				return in.Op == kasm.LEAQ && ok && m.Base == kasm.SI && m.Index == kasm.R8
			})
			f.Body[i].Args[0] = kasm.Ptr(kasm.SI)
		}},
	}
	for _, m := range []int{4, 2} {
		for _, b := range bugs {
			plant := func(mm int) *kasm.Func {
				f := winoasm.In(mm)
				if mm == m {
					b.plant(f)
				}
				return f
			}
			if err := checkIn(plant, nil); err == nil {
				t.Errorf("F(%d): planted bug %q not caught", m, b.name)
			} else {
				t.Logf("F(%d): planted bug %q: %v", m, b.name, err)
			}
		}
	}
}

// alphaOf returns alpha, the input rows of the kernel f.
func alphaOf(f *kasm.Func) int {
	if f.Name == "winoIn4AVX512" {
		return 6
	}
	return 4
}
