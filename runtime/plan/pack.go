package plan

import (
	"math/bits"
	"slices"
)

// Span is one buffer to place in an arena: its size and the steps it is live over, inclusive
// (First > Last: never used, not placed).
type Span struct {
	Size        int
	First, Last int
}

// Pack gives every span an offset in one arena such that spans live at the same step never
// overlap, and returns the offsets (0 for unused spans) and the arena size. Both planners use it.
//
// Buffers are placed one after the other, each at the lowest offset free over its lifetime, in
// two orders, and the smaller arena wins: largest first; and by size class (power of two),
// longest-lived first within a class. The second keeps the many long-lived buffers of similar
// sizes (a dense block's bottleneck outputs) from scattering short-lived ones above them: on
// DenseNet-BC-100 at batch 64 it saves 6 MB (2%) of the trainer's memory-efficient arena, while
// the first is 1 MB smaller in its standard mode.
func Pack(spans []Span) (offsets []int, size int) {
	var order []int
	for i, s := range spans {
		if s.First <= s.Last {
			order = append(order, i)
		}
	}
	bySize := func(a, b int) int { return spans[b].Size - spans[a].Size }
	byClass := func(a, b int) int {
		sa, sb := spans[a], spans[b]
		if ca, cb := bits.Len(uint(sa.Size)), bits.Len(uint(sb.Size)); ca != cb {
			return cb - ca
		}
		return (sb.Last - sb.First) - (sa.Last - sa.First)
	}
	offsets = make([]int, len(spans))
	size = -1
	for _, cmp := range []func(a, b int) int{bySize, byClass} {
		slices.SortStableFunc(order, cmp)
		offs, total := firstFit(spans, order)
		if size < 0 || total < size {
			size = total
			for k, i := range order {
				offsets[i] = offs[k]
			}
		}
	}
	return offsets, max(size, 0)
}

// firstFit places the spans in the given order, each at the lowest offset where it overlaps no
// span placed before it that is alive at the same time, and returns their offsets (in order's
// order) and the arena size.
func firstFit(spans []Span, order []int) ([]int, int) {
	offs := make([]int, len(order))
	size := 0
	var busy [][2]int
	for i, si := range order {
		s := spans[si]
		busy = busy[:0]
		for j, qi := range order[:i] {
			if q := spans[qi]; q.First <= s.Last && s.First <= q.Last {
				busy = append(busy, [2]int{offs[j], offs[j] + q.Size})
			}
		}
		slices.SortFunc(busy, func(x, y [2]int) int { return x[0] - y[0] })
		off := 0
		for _, iv := range busy {
			if off+s.Size <= iv[0] {
				break
			}
			off = max(off, iv[1])
		}
		offs[i] = off
		size = max(size, off+s.Size)
	}
	return offs, size
}
