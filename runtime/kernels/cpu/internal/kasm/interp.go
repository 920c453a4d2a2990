package kasm

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// Memory is the interpreter's address space: Go slices mapped at made-up addresses, 4 GiB
// apart, so that a kernel reading or writing outside the slices it was given faults (with the
// instruction and address) instead of passing by luck.
type Memory struct {
	regions []region
}

type region struct {
	name string
	base uint64
	data []byte
}

// Map makes data addressable and returns its address. The interpreter reads and writes data
// itself, so that results land in the caller's slice.
func (m *Memory) Map(name string, data []byte) uint64 {
	base := uint64(len(m.regions)+1) << 32
	m.regions = append(m.regions, region{name, base, data})
	return base
}

// Bytes returns the memory of s as bytes (s's elements must hold no pointers), for Map.
func Bytes[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(zero)))
}

// span returns the n bytes at addr, or an error naming the nearest region.
func (m *Memory) span(addr uint64, n int) ([]byte, error) {
	for _, r := range m.regions {
		if addr >= r.base && addr-r.base <= uint64(len(r.data)) && addr-r.base+uint64(n) <= uint64(len(r.data)) {
			off := addr - r.base
			return r.data[off : off+uint64(n)], nil
		}
	}
	for _, r := range m.regions {
		if addr>>32 == r.base>>32 {
			return nil, fmt.Errorf("%d bytes at %s%+d: outside its %d bytes", n, r.name, int64(addr-r.base), len(r.data))
		}
	}
	return nil, fmt.Errorf("%d bytes at %#x: not mapped", n, addr)
}

// Machine is the simulated CPU: 16 GPRs, 32 vector registers of 16 float32 lanes (the X and Y
// registers are their low 4 and 8 lanes), 8 opmasks and the arithmetic flags.
type Machine struct {
	GP  [16]uint64
	V   [32][16]uint32
	K   [8]uint64
	Mem *Memory
	// MaxSteps bounds the instructions one Run executes (0: 1<<28), so that a kernel whose loop
	// never ends fails its test instead of hanging it.
	MaxSteps int
	// Steps counts the instructions executed, over all Runs.
	Steps int

	zf, sf, cf, of bool
	undef          uint8 // flags the last instruction left undefined (flagZF, ...)
	frame          []uint64
	fn             *Func
}

const (
	flagZF = 1 << iota
	flagSF
	flagCF
	flagOF
)

// Run executes f from its first instruction to RET with args in its ABI0 frame (one 8-byte
// slot per declared argument: pointers are addresses from Mem.Map). Registers keep what they
// held before, as garbage would on hardware. It returns an error for anything the hardware would
// fault on or that a correct kernel never does: a memory access outside the mapped slices, an
// unknown instruction or operand form, a branch on an undefined flag, an undefined label, or
// running off the end.
func (m *Machine) Run(f *Func, args ...uint64) error {
	if len(args) != len(f.Args) {
		return fmt.Errorf("kasm: %s takes %d arguments, got %d", f.Name, len(f.Args), len(args))
	}
	labels := map[Label]int{}
	for i, in := range f.Body {
		if in.Def != "" {
			if _, dup := labels[in.Def]; dup {
				return fmt.Errorf("kasm: %s: label %s defined twice", f.Name, in.Def)
			}
			labels[in.Def] = i
		}
	}
	m.frame, m.fn = args, f
	m.undef = flagZF | flagSF | flagCF | flagOF
	limit := m.MaxSteps
	if limit == 0 {
		limit = 1 << 28
	}
	for pc, steps := 0, 0; ; steps++ {
		if pc >= len(f.Body) {
			return fmt.Errorf("kasm: %s: ran past the last instruction", f.Name)
		}
		if steps >= limit {
			return fmt.Errorf("kasm: %s: more than %d instructions", f.Name, limit)
		}
		in := f.Body[pc]
		pc++
		if in.Def != "" {
			continue
		}
		m.Steps++
		if in.Op == RET {
			return nil
		}
		target, err := m.exec(in)
		if err != nil {
			return fmt.Errorf("kasm: %s: instruction %d %q: %w", f.Name, pc-1, in.String(), err)
		}
		if target != "" {
			to, ok := labels[target]
			if !ok {
				return fmt.Errorf("kasm: %s: %q jumps to undefined label %s", f.Name, in.String(), target)
			}
			pc = to
		}
	}
}

// exec runs one instruction and returns the label it branches to, if it does.
func (m *Machine) exec(in Inst) (Label, error) {
	a := in.Args
	switch in.Op {
	case JMP, JZ, JEQ, JNZ, JNE, JCC, JCS, JLT, JGE, JLE, JGT:
		if len(a) != 1 {
			return "", errForm
		}
		l, ok := a[0].(Label)
		if !ok {
			return "", errForm
		}
		taken, err := m.cond(in.Op)
		if err != nil || !taken {
			return "", err
		}
		return l, nil
	case PREFETCHT0:
		// A hint that never faults: the address may lie anywhere.
		return "", nil
	case VZEROUPPER:
		for i := 0; i < 16; i++ {
			clear(m.V[i][4:])
		}
		return "", nil
	}
	if len(a) == 0 {
		return "", errForm
	}
	dst := a[len(a)-1]
	switch in.Op {
	case MOVQ:
		return "", m.movq(a)
	case MOVLQSX:
		b, err := m.load(a[0], 4)
		if err != nil {
			return "", err
		}
		return "", m.setGP(dst, uint64(int64(int32(binary.LittleEndian.Uint32(b)))))
	case LEAQ:
		mem, ok := a[0].(Mem)
		if !ok {
			return "", errForm
		}
		return "", m.setGP(dst, m.addr(mem))
	case ADDQ, SUBQ, ANDQ, CMPQ, TESTQ:
		if len(a) != 2 {
			return "", errForm
		}
		x, err := m.gp(a[0])
		if err != nil {
			return "", err
		}
		y, err := m.gp(a[1])
		if err != nil {
			return "", err
		}
		switch in.Op {
		case ADDQ:
			r := y + x
			m.arith(r, r < y, int64(^(x^y)&(x^r)) < 0)
			return "", m.setGP(dst, r)
		case SUBQ:
			r := y - x
			m.arith(r, y < x, int64((y^x)&(y^r)) < 0)
			return "", m.setGP(dst, r)
		case CMPQ: // Go order: flags of a[0] - a[1]
			r := x - y
			m.arith(r, x < y, int64((x^y)&(x^r)) < 0)
		case ANDQ:
			m.arith(y&x, false, false)
			return "", m.setGP(dst, y&x)
		case TESTQ:
			m.arith(y&x, false, false)
		}
		return "", nil
	case DECQ, INCQ:
		y, err := m.gp(dst)
		if err != nil {
			return "", err
		}
		// INC and DEC leave CF as it was, defined or not.
		cf, cfUndef := m.cf, m.undef&flagCF
		r := y + 1
		if in.Op == DECQ {
			r = y - 1
			m.arith(r, false, y == 1<<63)
		} else {
			m.arith(r, false, r == 1<<63)
		}
		m.cf, m.undef = cf, m.undef|cfUndef
		return "", m.setGP(dst, r)
	case SHLQ, SHRQ, BTRQ:
		n, ok := a[0].(Imm)
		if !ok || len(a) != 2 {
			return "", errForm
		}
		y, err := m.gp(dst)
		if err != nil {
			return "", err
		}
		n &= 63
		var r uint64
		switch {
		case in.Op == BTRQ:
			r = y &^ (1 << n)
			m.cf = y>>n&1 != 0
			m.undef = (m.undef | flagSF | flagOF) &^ flagCF
			return "", m.setGP(dst, r)
		case n == 0:
			return "", nil // a zero count changes no flag
		case in.Op == SHLQ:
			r = y << n
			m.arith(r, y>>(64-n)&1 != 0, false)
		default:
			r = y >> n
			m.arith(r, y>>(n-1)&1 != 0, false)
		}
		if n != 1 {
			m.undef |= flagOF
		}
		return "", m.setGP(dst, r)
	case KMOVW:
		return "", m.kmovw(a)
	case KORW, KXORW:
		return "", m.klogic(in)
	}
	return m.vector(in)
}

var errForm = fmt.Errorf("operand form not supported")

func (m *Machine) arith(r uint64, cf, of bool) {
	m.zf, m.sf, m.cf, m.of = r == 0, int64(r) < 0, cf, of
	m.undef = 0
}

func (m *Machine) cond(op Op) (bool, error) {
	need := map[Op]uint8{JZ: flagZF, JEQ: flagZF, JNZ: flagZF, JNE: flagZF, JCC: flagCF, JCS: flagCF,
		JLT: flagSF | flagOF, JGE: flagSF | flagOF, JLE: flagZF | flagSF | flagOF, JGT: flagZF | flagSF | flagOF}[op]
	if m.undef&need != 0 {
		return false, fmt.Errorf("branches on a flag the previous instruction left undefined")
	}
	switch op {
	case JMP:
		return true, nil
	case JZ, JEQ:
		return m.zf, nil
	case JNZ, JNE:
		return !m.zf, nil
	case JCC:
		return !m.cf, nil
	case JCS:
		return m.cf, nil
	case JLT:
		return m.sf != m.of, nil
	case JGE:
		return m.sf == m.of, nil
	case JLE:
		return m.zf || m.sf != m.of, nil
	default: // JGT
		return !m.zf && m.sf == m.of, nil
	}
}

func (m *Machine) addr(x Mem) uint64 {
	a := m.GP[x.Base.N] + uint64(x.Disp)
	if x.Index.Kind == GP {
		a += m.GP[x.Index.N] * uint64(x.Scale)
	}
	return a
}

// load returns the n bytes a memory operand addresses.
func (m *Machine) load(op Operand, n int) ([]byte, error) {
	x, ok := op.(Mem)
	if !ok || x.Base.Kind != GP {
		return nil, errForm
	}
	return m.Mem.span(m.addr(x), n)
}

// gp reads a 64-bit source: a GPR, an immediate, 8 bytes of memory or a frame argument.
func (m *Machine) gp(op Operand) (uint64, error) {
	switch x := op.(type) {
	case Reg:
		if x.Kind != GP {
			return 0, errForm
		}
		return m.GP[x.N], nil
	case Imm:
		return uint64(x), nil
	case Mem:
		b, err := m.load(x, 8)
		if err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(b), nil
	case Param:
		if x.Off%8 != 0 || x.Off/8 >= len(m.frame) || m.fn.Args[x.Off/8] != x.Name {
			// go vet checks the same on real assembly: the name must be the argument's.
			return 0, fmt.Errorf("frame slot %s is not an argument of %s", x, m.fn.Name)
		}
		return m.frame[x.Off/8], nil
	}
	return 0, errForm
}

func (m *Machine) setGP(op Operand, v uint64) error {
	switch x := op.(type) {
	case Reg:
		if x.Kind != GP {
			return errForm
		}
		m.GP[x.N] = v
		return nil
	case Mem:
		b, err := m.load(x, 8)
		if err != nil {
			return err
		}
		binary.LittleEndian.PutUint64(b, v)
		return nil
	}
	return errForm
}

func (m *Machine) movq(a []Operand) error {
	if len(a) != 2 {
		return errForm
	}
	v, err := m.gp(a[0])
	if err != nil {
		return err
	}
	return m.setGP(a[1], v)
}

func (m *Machine) kmovw(a []Operand) error {
	if len(a) != 2 {
		return errForm
	}
	src, ok1 := a[0].(Reg)
	dst, ok2 := a[1].(Reg)
	switch {
	case ok1 && ok2 && src.Kind == GP && dst.Kind == K:
		m.K[dst.N] = m.GP[src.N] & 0xFFFF
	case ok1 && ok2 && src.Kind == K && dst.Kind == GP:
		m.GP[dst.N] = m.K[src.N] & 0xFFFF
	default:
		return errForm
	}
	return nil
}

// klogic runs KORW and KXORW on three opmask registers ("op b, a, k"), 16 bits wide.
func (m *Machine) klogic(in Inst) error {
	if len(in.Args) != 3 {
		return errForm
	}
	var k [3]Reg
	for i, a := range in.Args {
		r, ok := a.(Reg)
		if !ok || r.Kind != K {
			return errForm
		}
		k[i] = r
	}
	x, y := m.K[k[0].N], m.K[k[1].N]
	if in.Op == KORW {
		m.K[k[2].N] = (x | y) & 0xFFFF
	} else {
		m.K[k[2].N] = (x ^ y) & 0xFFFF
	}
	return nil
}
