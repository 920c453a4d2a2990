package pytorch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
)

// Limits of the pickle machine. A torch state_dict pickle stays far below them (densenet121's has
// about 1,000 stack items at most and 8,000 memo entries); they bound what a hostile pickle can
// make the reader allocate.
const (
	maxPickleStack = 1 << 20 // values on the stack, all marks included
	maxPickleMarks = 1 << 16 // nested MARKs
	maxPickleMemo  = 1 << 21 // memo entries
	maxPickleStr   = 1 << 20 // bytes of one string, bytes object or GLOBAL line
	maxPickleLong  = 1 << 10 // bytes of one LONG4 integer
	maxGlobalLine  = 256     // bytes of one GLOBAL module or name line
)

// Python values as the restricted unpickler represents them. None is pyNone{}, bool is bool,
// int is int64 (or *big.Int beyond 64 bits), float is float64, str is string, bytes is pyBytes.
type (
	pyNone   struct{}
	pyBytes  []byte
	pyTuple  []any
	pyList   struct{ items []any }
	pyGlobal struct{ module, name string }
)

// pyDict is an insertion-ordered dict (dict and collections.OrderedDict alike). Keys are limited
// to hashable scalars: str, int, bool, float and None.
type pyDict struct {
	keys, vals []any
	index      map[any]int
}

func newDict() *pyDict { return &pyDict{index: map[any]int{}} }

// set inserts or replaces d[k].
func (d *pyDict) set(k, v any) error {
	switch k.(type) {
	case string, int64, bool, float64, pyNone:
	default:
		return fmt.Errorf("dict key of type %s is not supported", typeName(k))
	}
	if i, ok := d.index[k]; ok {
		d.vals[i] = v
		return nil
	}
	d.index[k] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

// get returns d[k] for a string key.
func (d *pyDict) get(k string) (any, bool) {
	i, ok := d.index[k]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// typeName names a value's Python type for error messages.
func typeName(v any) string {
	switch v := v.(type) {
	case pyNone:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case pyBytes:
		return "bytes"
	case pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case *pyGlobal:
		return v.module + "." + v.name
	case *storageRef:
		return "storage"
	case *tensorRef:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}

// Pickle opcodes (protocols 0-5) the reader knows by name; the text-mode ones of protocol 0
// are refused, since torch.save never writes them.
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opBinint         = 'J'
	opBinint1        = 'K'
	opBinint2        = 'M'
	opNone           = 'N'
	opBinpersid      = 'Q'
	opReduce         = 'R'
	opBinstring      = 'T'
	opShortBinstring = 'U'
	opBinunicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opDict           = 'd'
	opEmptyDict      = '}'
	opAppends        = 'e'
	opBinget         = 'h'
	opLongBinget     = 'j'
	opList           = 'l'
	opEmptyList      = ']'
	opBinput         = 'q'
	opLongBinput     = 'r'
	opSetitem        = 's'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opSetitems       = 'u'
	opBinfloat       = 'G'
	opBinbytes       = 'B'
	opShortBinbytes  = 'C'
	opProto          = 0x80
	opNewobj         = 0x81
	opTuple1         = 0x85
	opTuple2         = 0x86
	opTuple3         = 0x87
	opNewtrue        = 0x88
	opNewfalse       = 0x89
	opLong1          = 0x8a
	opLong4          = 0x8b
	opShortBinunic   = 0x8c
	opBinunicode8    = 0x8d
	opBinbytes8      = 0x8e
	opEmptySet       = 0x8f
	opAdditems       = 0x90
	opFrozenset      = 0x91
	opNewobjEx       = 0x92
	opStackGlobal    = 0x93
	opMemoize        = 0x94
	opFrame          = 0x95
)

// unpickler is a restricted pickle machine: it parses a pickle into the values above and never
// executes anything. GLOBAL may only name the callables and classes a torch state_dict uses
// (allowedGlobals); REDUCE may only call the few of them that are functions, and does so by
// building a value (an OrderedDict, a tensorRef), not by running code. BINPERSID hands the
// persistent id to persistentLoad, which the file format supplies.
type unpickler struct {
	src            *source
	stack          []any
	marks          []int
	memo           map[uint32]any
	persistentLoad func(pid any) (any, error)
	op             byte  // opcode being executed, for errors
	opAt           int64 // its offset in the pickle
}

// unpickle reads one pickle (up to and including STOP) from src and returns its value.
func unpickle(src *source, persistentLoad func(any) (any, error)) (any, error) {
	u := &unpickler{src: src, memo: map[uint32]any{}, persistentLoad: persistentLoad}
	return u.run()
}

// errf reports malformed or unsupported input at the current opcode; it wraps ErrFormat.
func (u *unpickler) errf(format string, args ...any) error {
	return fmt.Errorf("%w: pickle opcode %s at offset %d: %s", ErrFormat, opName(u.op), u.opAt, fmt.Sprintf(format, args...))
}

// opName formats an opcode as 0x52 'R'.
func opName(op byte) string {
	if op >= 0x20 && op < 0x7f {
		return fmt.Sprintf("0x%02x %q", op, rune(op))
	}
	return fmt.Sprintf("0x%02x", op)
}

// readErr turns a read failure into a format error; running out of data is "truncated".
func (u *unpickler) readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return u.errf("pickle is truncated")
	}
	if errors.Is(err, ErrFormat) {
		return err
	}
	return fmt.Errorf("read pickle at offset %d: %w", u.opAt, err)
}

func (u *unpickler) push(v any) error {
	if len(u.stack) >= maxPickleStack {
		return u.errf("stack exceeds %d values", maxPickleStack)
	}
	u.stack = append(u.stack, v)
	return nil
}

// floor is the stack length at the innermost MARK; pops may not go below it.
func (u *unpickler) floor() int {
	if len(u.marks) == 0 {
		return 0
	}
	return u.marks[len(u.marks)-1]
}

func (u *unpickler) pop() (any, error) {
	if len(u.stack) <= u.floor() {
		return nil, u.errf("stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) <= u.floor() {
		return nil, u.errf("stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark removes the innermost MARK and returns the values pushed after it.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, u.errf("no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) memoize(idx uint32) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	if _, ok := u.memo[idx]; !ok && len(u.memo) >= maxPickleMemo {
		return u.errf("memo exceeds %d entries", maxPickleMemo)
	}
	u.memo[idx] = v
	return nil
}

func (u *unpickler) memoGet(idx uint32) error {
	v, ok := u.memo[idx]
	if !ok {
		return u.errf("memo key %d is not defined", idx)
	}
	return u.push(v)
}

// uint reads an n-byte little-endian unsigned integer (n <= 8).
func (u *unpickler) uint(n int) (uint64, error) {
	var x uint64
	for i := 0; i < n; i++ {
		c, err := u.src.readByte()
		if err != nil {
			return 0, u.readErr(err)
		}
		x |= uint64(c) << (8 * i)
	}
	return x, nil
}

// bytesN reads a length-prefixed byte string whose length field has lenBytes bytes.
func (u *unpickler) bytesN(lenBytes int) ([]byte, error) {
	n, err := u.uint(lenBytes)
	if err != nil {
		return nil, err
	}
	if n > maxPickleStr {
		return nil, u.errf("string of %d bytes exceeds the limit of %d", n, maxPickleStr)
	}
	b, err := u.src.read(int64(n))
	if err != nil {
		return nil, u.readErr(err)
	}
	return b, nil
}

// line reads a GLOBAL operand line (without its '\n').
func (u *unpickler) line() (string, error) {
	var b []byte
	for {
		c, err := u.src.readByte()
		if err != nil {
			return "", u.readErr(err)
		}
		if c == '\n' {
			return string(b), nil
		}
		if len(b) >= maxGlobalLine {
			return "", u.errf("GLOBAL line longer than %d bytes", maxGlobalLine)
		}
		b = append(b, c)
	}
}

// long decodes a little-endian two's-complement integer of any length, as LONG1 and LONG4
// store it: an int64 when it fits, a *big.Int otherwise.
func long(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var x uint64
		for i := len(b) - 1; i >= 0; i-- {
			x = x<<8 | uint64(b[i])
		}
		shift := uint(64 - 8*len(b))
		return int64(x<<shift) >> shift // sign-extend
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	x := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return x
}

// run executes opcodes until STOP.
func (u *unpickler) run() (any, error) {
	for {
		u.opAt = u.src.pos
		op, err := u.src.readByte()
		if err != nil {
			u.op = 0
			return nil, u.readErr(err)
		}
		u.op = op
		done, result, err := u.step(op)
		if err != nil {
			return nil, err
		}
		if done {
			return result, nil
		}
	}
}

// step executes one opcode. It returns done with the pickle's value at STOP.
func (u *unpickler) step(op byte) (done bool, result any, err error) {
	switch op {
	case opProto:
		v, err := u.uint(1)
		if err != nil {
			return false, nil, err
		}
		if v > 5 {
			return false, nil, u.errf("unsupported pickle protocol %d", v)
		}
	case opFrame:
		if _, err := u.uint(8); err != nil { // frames are a buffering hint only
			return false, nil, err
		}
	case opStop:
		v, err := u.pop()
		return err == nil, v, err
	case opMark:
		if len(u.marks) >= maxPickleMarks {
			return false, nil, u.errf("more than %d nested MARKs", maxPickleMarks)
		}
		u.marks = append(u.marks, len(u.stack))
	case opPop:
		if len(u.stack) == u.floor() && len(u.marks) > 0 { // POP of a bare MARK
			u.marks = u.marks[:len(u.marks)-1]
			return false, nil, nil
		}
		_, err = u.pop()
	case opPopMark:
		_, err = u.popMark()
	case opDup:
		var v any
		if v, err = u.top(); err == nil {
			err = u.push(v)
		}
	case opNone:
		err = u.push(pyNone{})
	case opNewtrue:
		err = u.push(true)
	case opNewfalse:
		err = u.push(false)
	case opBinint:
		var v uint64
		if v, err = u.uint(4); err == nil {
			err = u.push(int64(int32(uint32(v))))
		}
	case opBinint1, opBinint2:
		n := 1
		if op == opBinint2 {
			n = 2
		}
		var v uint64
		if v, err = u.uint(n); err == nil {
			err = u.push(int64(v))
		}
	case opLong1, opLong4:
		n := 1
		if op == opLong4 {
			n = 4
		}
		var size uint64
		if size, err = u.uint(n); err != nil {
			return false, nil, err
		}
		if size > maxPickleLong {
			return false, nil, u.errf("integer of %d bytes exceeds the limit of %d", size, maxPickleLong)
		}
		var b []byte
		if b, err = u.src.read(int64(size)); err != nil {
			return false, nil, u.readErr(err)
		}
		err = u.push(long(b))
	case opBinfloat:
		var b []byte
		if b, err = u.src.read(8); err != nil {
			return false, nil, u.readErr(err)
		}
		err = u.push(math.Float64frombits(binary.BigEndian.Uint64(b))) // BINFLOAT is big-endian
	case opBinunicode, opShortBinunic, opBinunicode8, opBinstring, opShortBinstring:
		var b []byte
		if b, err = u.bytesN(lenSize(op)); err == nil {
			err = u.push(string(b))
		}
	case opBinbytes, opShortBinbytes, opBinbytes8:
		var b []byte
		if b, err = u.bytesN(lenSize(op)); err == nil {
			err = u.push(pyBytes(b))
		}
	case opEmptyTuple:
		err = u.push(pyTuple{})
	case opTuple1, opTuple2, opTuple3:
		n := int(op-opTuple1) + 1
		if len(u.stack)-u.floor() < n {
			return false, nil, u.errf("stack underflow")
		}
		t := append(pyTuple(nil), u.stack[len(u.stack)-n:]...)
		u.stack = u.stack[:len(u.stack)-n]
		err = u.push(t)
	case opTuple:
		var items []any
		if items, err = u.popMark(); err == nil {
			err = u.push(pyTuple(items))
		}
	case opEmptyList:
		err = u.push(&pyList{})
	case opList:
		var items []any
		if items, err = u.popMark(); err == nil {
			err = u.push(&pyList{items: items})
		}
	case opEmptySet: // sets are kept as lists: no state_dict needs their semantics
		err = u.push(&pyList{})
	case opFrozenset:
		var items []any
		if items, err = u.popMark(); err == nil {
			err = u.push(&pyList{items: items})
		}
	case opAppend:
		var v any
		if v, err = u.pop(); err == nil {
			err = u.appendTo([]any{v})
		}
	case opAppends, opAdditems:
		var items []any
		if items, err = u.popMark(); err == nil {
			err = u.appendTo(items)
		}
	case opEmptyDict:
		err = u.push(newDict())
	case opDict:
		var items []any
		if items, err = u.popMark(); err == nil {
			d := newDict()
			if err = u.setItems(d, items); err == nil {
				err = u.push(d)
			}
		}
	case opSetitem:
		if len(u.stack)-u.floor() < 3 {
			return false, nil, u.errf("stack underflow")
		}
		items := u.stack[len(u.stack)-2:]
		u.stack = u.stack[:len(u.stack)-2]
		err = u.setItemsOnTop(items)
	case opSetitems:
		var items []any
		if items, err = u.popMark(); err == nil {
			err = u.setItemsOnTop(items)
		}
	case opBinput:
		var idx uint64
		if idx, err = u.uint(1); err == nil {
			err = u.memoize(uint32(idx))
		}
	case opLongBinput:
		var idx uint64
		if idx, err = u.uint(4); err == nil {
			err = u.memoize(uint32(idx))
		}
	case opMemoize:
		err = u.memoize(uint32(len(u.memo)))
	case opBinget:
		var idx uint64
		if idx, err = u.uint(1); err == nil {
			err = u.memoGet(uint32(idx))
		}
	case opLongBinget:
		var idx uint64
		if idx, err = u.uint(4); err == nil {
			err = u.memoGet(uint32(idx))
		}
	case opGlobal:
		var mod, name string
		if mod, err = u.line(); err != nil {
			return false, nil, err
		}
		if name, err = u.line(); err != nil {
			return false, nil, err
		}
		err = u.pushGlobal(mod, name)
	case opStackGlobal:
		var name, mod any
		if name, err = u.pop(); err != nil {
			return false, nil, err
		}
		if mod, err = u.pop(); err != nil {
			return false, nil, err
		}
		ms, ok1 := mod.(string)
		ns, ok2 := name.(string)
		if !ok1 || !ok2 {
			return false, nil, u.errf("STACK_GLOBAL needs two str, got %s and %s", typeName(mod), typeName(name))
		}
		err = u.pushGlobal(ms, ns)
	case opReduce, opNewobj:
		var args, fn any
		if args, err = u.pop(); err != nil {
			return false, nil, err
		}
		if fn, err = u.pop(); err != nil {
			return false, nil, err
		}
		var v any
		if v, err = u.call(fn, args); err == nil {
			err = u.push(v)
		}
	case opNewobjEx:
		var kwargs, args, fn any
		if kwargs, err = u.pop(); err != nil {
			return false, nil, err
		}
		if args, err = u.pop(); err != nil {
			return false, nil, err
		}
		if fn, err = u.pop(); err != nil {
			return false, nil, err
		}
		if d, ok := kwargs.(*pyDict); !ok || len(d.keys) > 0 {
			return false, nil, u.errf("NEWOBJ_EX with keyword arguments is not supported")
		}
		var v any
		if v, err = u.call(fn, args); err == nil {
			err = u.push(v)
		}
	case opBuild:
		var obj any
		if _, err = u.pop(); err != nil { // the state
			return false, nil, err
		}
		if obj, err = u.top(); err != nil {
			return false, nil, err
		}
		// An OrderedDict state_dict carries its _metadata attribute (module versions) as BUILD
		// state; it does not matter for the tensors, so it is dropped.
		if _, ok := obj.(*pyDict); !ok {
			return false, nil, u.errf("BUILD on a %s is not supported", typeName(obj))
		}
	case opBinpersid:
		var pid any
		if pid, err = u.pop(); err != nil {
			return false, nil, err
		}
		if u.persistentLoad == nil {
			return false, nil, u.errf("persistent id in a pickle that may not have any")
		}
		var v any
		if v, err = u.persistentLoad(pid); err != nil {
			return false, nil, u.errf("%v", err)
		}
		err = u.push(v)
	default:
		return false, nil, u.errf("opcode not supported in a state_dict pickle")
	}
	return false, nil, err
}

// lenSize is the size in bytes of the length field of a string or bytes opcode.
func lenSize(op byte) int {
	switch op {
	case opShortBinunic, opShortBinstring, opShortBinbytes:
		return 1
	case opBinunicode8, opBinbytes8:
		return 8
	}
	return 4
}

// appendTo extends the list on top of the stack (APPEND, APPENDS, ADDITEMS).
func (u *unpickler) appendTo(items []any) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	l, ok := v.(*pyList)
	if !ok {
		return u.errf("append to a %s", typeName(v))
	}
	l.items = append(l.items, items...)
	return nil
}

// setItemsOnTop stores key/value pairs into the dict on top of the stack (SETITEM, SETITEMS).
func (u *unpickler) setItemsOnTop(items []any) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	d, ok := v.(*pyDict)
	if !ok {
		return u.errf("set items of a %s", typeName(v))
	}
	return u.setItems(d, items)
}

func (u *unpickler) setItems(d *pyDict, items []any) error {
	if len(items)%2 != 0 {
		return u.errf("odd number of values (%d) for key/value pairs", len(items))
	}
	for i := 0; i < len(items); i += 2 {
		if err := d.set(items[i], items[i+1]); err != nil {
			return u.errf("%v", err)
		}
	}
	return nil
}

// pushGlobal pushes module.name if a state_dict may reference it, and refuses anything else
// before it could ever be used.
func (u *unpickler) pushGlobal(module, name string) error {
	if _, ok := allowedGlobals[module+"."+name]; !ok {
		return fmt.Errorf("pickle global %q is %w", module+"."+name, ErrForbidden)
	}
	return u.push(&pyGlobal{module: module, name: name})
}

// globalKind says what an allowed global is for.
type globalKind int

const (
	globalOrderedDict globalKind = iota
	globalRebuildTensor
	globalRebuildTensorV2
	globalRebuildParameter
	globalRebuildParameterWithState
	globalStorage // a storage class, only ever an element of a persistent id
)

// allowedGlobals lists every global a torch state_dict or training checkpoint of plain tensors
// references: the dict class, the tensor and Parameter rebuild functions (torch 1.x and 2.x), and
// the typed storage classes that name a storage's element type in persistent ids.
var allowedGlobals = map[string]globalKind{
	"collections.OrderedDict":                    globalOrderedDict,
	"torch._utils._rebuild_tensor":               globalRebuildTensor,
	"torch._utils._rebuild_tensor_v2":            globalRebuildTensorV2,
	"torch._utils._rebuild_parameter":            globalRebuildParameter,
	"torch._utils._rebuild_parameter_with_state": globalRebuildParameterWithState,
	"torch.FloatStorage":                         globalStorage,
	"torch.DoubleStorage":                        globalStorage,
	"torch.HalfStorage":                          globalStorage,
	"torch.BFloat16Storage":                      globalStorage,
	"torch.LongStorage":                          globalStorage,
	"torch.IntStorage":                           globalStorage,
	"torch.ShortStorage":                         globalStorage,
	"torch.CharStorage":                          globalStorage,
	"torch.ByteStorage":                          globalStorage,
	"torch.BoolStorage":                          globalStorage,
}

// call evaluates REDUCE (or NEWOBJ) of fn on args for the allowed callables, by constructing the
// value the call would return.
func (u *unpickler) call(fn, args any) (any, error) {
	g, ok := fn.(*pyGlobal)
	if !ok {
		return nil, u.errf("call of a %s", typeName(fn))
	}
	a, ok := args.(pyTuple)
	if !ok {
		return nil, u.errf("%s called with %s arguments, want a tuple", typeName(g), typeName(args))
	}
	switch allowedGlobals[g.module+"."+g.name] {
	case globalOrderedDict:
		d := newDict()
		if len(a) == 0 {
			return d, nil
		}
		if len(a) == 1 { // OrderedDict([(k, v), ...])
			if l, ok := a[0].(*pyList); ok {
				for _, it := range l.items {
					kv, ok := it.(pyTuple)
					if !ok || len(kv) != 2 {
						return nil, u.errf("OrderedDict item is a %s, want a (key, value) tuple", typeName(it))
					}
					if err := d.set(kv[0], kv[1]); err != nil {
						return nil, u.errf("%v", err)
					}
				}
				return d, nil
			}
		}
		return nil, u.errf("OrderedDict called with %d unsupported arguments", len(a))
	case globalRebuildTensor, globalRebuildTensorV2:
		// _rebuild_tensor(storage, offset, size, stride) and
		// _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]).
		want := "4"
		okLen := len(a) == 4
		if allowedGlobals[g.module+"."+g.name] == globalRebuildTensorV2 {
			want, okLen = "6 or 7", len(a) == 6 || len(a) == 7
		}
		if !okLen {
			return nil, u.errf("%s called with %d arguments, want %s", g.name, len(a), want)
		}
		t, err := newTensorRef(a[0], a[1], a[2], a[3])
		if err != nil {
			return nil, u.errf("%s: %v", g.name, err)
		}
		return t, nil
	case globalRebuildParameter, globalRebuildParameterWithState:
		// _rebuild_parameter(data, requires_grad, backward_hooks[, state]): a Parameter is its data.
		if len(a) != 3 && len(a) != 4 {
			return nil, u.errf("%s called with %d arguments", g.name, len(a))
		}
		if _, ok := a[0].(*tensorRef); !ok {
			return nil, u.errf("%s of a %s, want a tensor", g.name, typeName(a[0]))
		}
		return a[0], nil
	}
	return nil, u.errf("%s is not callable in a state_dict", typeName(g))
}

// source is a buffered reader over an io.ReaderAt section that knows its position, so several
// pickles and raw blocks can follow each other (the legacy format) and errors can name offsets.
type source struct {
	r        io.ReaderAt
	pos, end int64 // next offset to read; end of the readable section
	buf      []byte
	bufAt    int64 // offset of buf[0]
}

const sourceBuf = 64 << 10

func newSource(r io.ReaderAt, start, end int64) *source {
	return &source{r: r, pos: start, end: end, bufAt: start}
}

// fill makes buf cover pos, reading up to sourceBuf bytes.
func (s *source) fill() error {
	if s.pos >= s.end {
		return io.EOF
	}
	n := min(int64(sourceBuf), s.end-s.pos)
	if cap(s.buf) < int(n) {
		s.buf = make([]byte, n)
	}
	s.buf = s.buf[:n]
	m, err := s.r.ReadAt(s.buf, s.pos)
	if m < int(n) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		s.buf = s.buf[:0]
		return err
	}
	s.bufAt = s.pos
	return nil
}

func (s *source) readByte() (byte, error) {
	if s.pos < s.bufAt || s.pos >= s.bufAt+int64(len(s.buf)) {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	c := s.buf[s.pos-s.bufAt]
	s.pos++
	return c, nil
}

// read returns the next n bytes in a fresh slice. n is checked against the section end before
// anything is allocated.
func (s *source) read(n int64) ([]byte, error) {
	if n < 0 || n > s.end-s.pos {
		return nil, io.ErrUnexpectedEOF
	}
	out := make([]byte, n)
	for i := int64(0); i < n; {
		if s.pos < s.bufAt || s.pos >= s.bufAt+int64(len(s.buf)) {
			if n-i >= sourceBuf { // large block: read it directly
				m, err := s.r.ReadAt(out[i:], s.pos)
				if int64(m) < n-i {
					if err == nil || errors.Is(err, io.EOF) {
						err = io.ErrUnexpectedEOF
					}
					return nil, err
				}
				s.pos += n - i
				return out, nil
			}
			if err := s.fill(); err != nil {
				return nil, err
			}
		}
		c := copy(out[i:], s.buf[s.pos-s.bufAt:])
		i += int64(c)
		s.pos += int64(c)
	}
	return out, nil
}
