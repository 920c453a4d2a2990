package train

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// ErrState is wrapped by LoadState's errors about a state that does not belong to this trainer
// or is corrupt.
var ErrState = errors.New("bad training state")

// The state file: the magic and version, the step count, the optimizer name, then one record per
// tensor (name, kind, float32 values), and a CRC-32 (IEEE) of everything before it. Little-endian
// throughout; floats are stored as their bits, so a resumed run continues bit for bit.
const (
	stateMagic   = "DNXTRAIN"
	stateVersion = 1
)

// Record kinds.
const (
	recParam    byte = iota // parameter value
	recStat                 // running statistic
	recMomentum             // SGD momentum buffer
	recAdamM                // Adam exp_avg
	recAdamV                // Adam exp_avg_sq
)

// SaveState writes everything a resumed run needs: the weights, the running statistics, the
// optimizer's buffers and the step count.
func (t *Trainer) SaveState(w io.Writer) error {
	h := crc32.NewIEEE()
	bw := bufio.NewWriter(io.MultiWriter(w, h))
	var err error
	put := func(v any) {
		if err == nil {
			err = binary.Write(bw, binary.LittleEndian, v)
		}
	}
	str := func(s string) {
		put(uint32(len(s)))
		if err == nil {
			_, err = bw.WriteString(s)
		}
	}
	type rec struct {
		name string
		kind byte
		data []float32
	}
	var recs []rec
	for _, p := range t.params {
		recs = append(recs, rec{p.name, recParam, p.data})
		for _, o := range []struct {
			kind byte
			data []float32
		}{{recMomentum, p.buf}, {recAdamM, p.m}, {recAdamV, p.v}} {
			if o.data != nil {
				recs = append(recs, rec{p.name, o.kind, o.data})
			}
		}
	}
	for _, p := range t.stats {
		recs = append(recs, rec{p.name, recStat, p.data})
	}
	_, err = bw.WriteString(stateMagic)
	put(uint32(stateVersion))
	put(uint64(t.step))
	str(t.opts.Optim.Name)
	put(uint32(len(recs)))
	buf := make([]byte, 0, 4096)
	for _, r := range recs {
		str(r.name)
		put(r.kind)
		put(uint32(len(r.data)))
		for i := 0; i < len(r.data) && err == nil; {
			buf = buf[:0]
			for ; i < len(r.data) && len(buf) < cap(buf); i++ {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(r.data[i]))
			}
			_, err = bw.Write(buf)
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = binary.Write(w, binary.LittleEndian, h.Sum32())
	}
	if err != nil {
		return fmt.Errorf("save training state: %w", err)
	}
	return nil
}

// LoadState restores a state written by SaveState for the same graph and optimizer. It checks
// the whole state before changing anything: on error the trainer is unchanged.
func (t *Trainer) LoadState(r io.Reader) error {
	h := crc32.NewIEEE()
	br := bufio.NewReader(r)
	tr := io.TeeReader(br, h)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("load training state: %w: %s", ErrState, fmt.Sprintf(format, args...))
	}
	var err error
	get := func(v any) {
		if err == nil {
			err = binary.Read(tr, binary.LittleEndian, v)
		}
	}
	str := func() string {
		var n uint32
		get(&n)
		if err != nil {
			return ""
		}
		if n > 1<<16 {
			err = bad("name of %d bytes", n)
			return ""
		}
		b := make([]byte, n)
		if err == nil {
			_, err = io.ReadFull(tr, b)
		}
		return string(b)
	}
	magic := make([]byte, len(stateMagic))
	if _, err = io.ReadFull(tr, magic); err != nil || string(magic) != stateMagic {
		return bad("not a dnx training state")
	}
	var version uint32
	var step uint64
	get(&version)
	if err == nil && version != stateVersion {
		return bad("version %d, want %d", version, stateVersion)
	}
	get(&step)
	name := str()
	if err == nil && name != t.opts.Optim.Name {
		return bad("state of optimizer %q, this trainer uses %q", name, t.opts.Optim.Name)
	}
	var count uint32
	get(&count)
	type key struct {
		name string
		kind byte
	}
	loaded := map[key][]float32{}
	for i := uint32(0); i < count && err == nil; i++ {
		n := str()
		var kind byte
		var size uint32
		get(&kind)
		get(&size)
		if err != nil {
			break
		}
		p := t.byName[n]
		if p == nil {
			return bad("tensor %q is not a parameter or statistic of this graph", n)
		}
		if int(size) != len(p.data) || kind > recAdamV {
			return bad("tensor %q (kind %d) has %d values, want %d", n, kind, size, len(p.data))
		}
		data := make([]float32, size)
		raw := make([]byte, 4*size)
		if _, err = io.ReadFull(tr, raw); err != nil {
			break
		}
		for j := range data {
			data[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
		}
		loaded[key{n, kind}] = data
	}
	if err != nil {
		if errors.Is(err, ErrState) {
			return err
		}
		return bad("%v", err)
	}
	sum := h.Sum32()
	var stored uint32
	if err := binary.Read(br, binary.LittleEndian, &stored); err != nil || stored != sum {
		return bad("checksum mismatch (the state is truncated or corrupt)")
	}
	for _, p := range t.params {
		if loaded[key{p.name, recParam}] == nil {
			return bad("parameter %q is missing", p.name)
		}
		if (loaded[key{p.name, recAdamM}] == nil) != (loaded[key{p.name, recAdamV}] == nil) {
			return bad("parameter %q has only one of Adam's two moments", p.name)
		}
	}
	for _, p := range t.stats {
		if loaded[key{p.name, recStat}] == nil {
			return bad("running statistic %q is missing", p.name)
		}
	}
	for _, p := range t.params {
		copy(p.data, loaded[key{p.name, recParam}])
		p.buf, p.m, p.v = loaded[key{p.name, recMomentum}], loaded[key{p.name, recAdamM}], loaded[key{p.name, recAdamV}]
		if !p.train {
			p.buf, p.m, p.v = nil, nil, nil
		}
	}
	for _, p := range t.stats {
		copy(p.data, loaded[key{p.name, recStat}])
	}
	t.step = int(step)
	return nil
}
