package plan

// Concat is one channel concatenation a planner wants laid out without copies: the value ids of
// its output and inputs, in the planner's own numbering.
type Concat struct {
	Out int
	Ins []int
}

// ConcatLayout is a planner's storage as PlaceConcats sees it. Both planners lay out dense
// blocks the same way through it; they differ only in how a channel slice is addressed (NCHW
// with a batch stride for inference, channel-major slabs for training).
type ConcatLayout interface {
	// Where returns the buffer holding value id (buf < 0: not placed yet), the offset of its
	// first element in it, and a key that values lying side by side as one concatenation must
	// share (the inference plan's batch stride; 0 where any do).
	Where(id int) (buf, off, key int)
	// Extent returns how far, in the concatenation's layout, the next input starts after value
	// id: its channels times what one channel occupies.
	Extent(id int) int
	// Placeable reports whether value id may be stored inside another value's buffer: a node
	// writes it (not an alias or a view), and it is not a graph output.
	Placeable(id int) bool
	// Own gives value id a buffer of its own.
	Own(id int)
	// PlaceIn stores value id inside concatenation out's buffer, at offset off.
	PlaceIn(id, out, off int)
	// View makes concatenation out a view of the storage of its inputs, which lie side by side
	// from first's offset; it returns false where the planner's layout cannot express that view.
	View(out, first int) bool
}

// PlaceConcats lays out channel concatenations (given in graph order) without copies, the way
// DenseNet wants: concatenations are visited from the last to the first, so a dense block's
// final one (all the block's features) gets its buffer first; each input that a node writes is
// placed at its channel offset inside that buffer (its producer then writes there directly), and
// each earlier concatenation whose inputs already lie side by side in one buffer becomes a view
// of it. Whatever could not be placed is copied at run time (ConcatCopies says which).
func PlaceConcats(concats []Concat, l ConcatLayout) {
	for i := len(concats) - 1; i >= 0; i-- {
		c := concats[i]
		outBuf, _, _ := l.Where(c.Out)
		if buf0, off0, key0 := l.Where(c.Ins[0]); buf0 >= 0 && outBuf < 0 {
			contiguous := true
			off := off0
			for _, id := range c.Ins {
				buf, o, key := l.Where(id)
				if buf != buf0 || o != off || key != key0 {
					contiguous = false
					break
				}
				off += l.Extent(id)
			}
			if contiguous && l.View(c.Out, c.Ins[0]) {
				continue
			}
		}
		if outBuf < 0 {
			l.Own(c.Out)
		}
		_, off, _ := l.Where(c.Out)
		for _, id := range c.Ins {
			if buf, _, _ := l.Where(id); buf < 0 && l.Placeable(id) {
				l.PlaceIn(id, c.Out, off)
			}
			off += l.Extent(id)
		}
	}
}

// ConcatCopies returns the inputs of concatenation c that do not lie at their place in its
// output's storage and must be copied there at run time; none means the concatenation is free.
func ConcatCopies(c Concat, l ConcatLayout) []int {
	var copies []int
	outBuf, off, outKey := l.Where(c.Out)
	for _, id := range c.Ins {
		if buf, o, key := l.Where(id); buf != outBuf || o != off || key != outKey {
			copies = append(copies, id)
		}
		off += l.Extent(id)
	}
	return copies
}
