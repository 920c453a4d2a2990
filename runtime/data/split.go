package data

import (
	"math"
	"math/rand/v2"
	"slices"
)

// subset is a view of the examples idx of a parent Dataset.
type subset struct {
	parent Dataset
	idx    []int
}

// Split divides d into a training and a validation subset: round(valFraction * d.Len()) examples,
// drawn uniformly at random by seed, form the validation set, the rest the training set. The two
// are disjoint, cover d, keep d's classes and size, and list their examples in d's order. The
// split depends only on (d.Len(), valFraction, seed). valFraction is clamped to [0, 1] (NaN counts
// as 0), so either subset may be empty.
func Split(d Dataset, valFraction float64, seed int64) (train, val Dataset) {
	n := d.Len()
	if math.IsNaN(valFraction) {
		valFraction = 0
	}
	nVal := int(math.Round(min(max(valFraction, 0), 1) * float64(n)))
	perm := newRand(seed, domainSplit, uint64(n), 0).Perm(n)
	v, t := perm[:nVal], perm[nVal:]
	slices.Sort(v)
	slices.Sort(t)
	return &subset{d, t}, &subset{d, v}
}

func (s *subset) Len() int             { return len(s.idx) }
func (s *subset) NumClasses() int      { return s.parent.NumClasses() }
func (s *subset) ClassNames() []string { return s.parent.ClassNames() }
func (s *subset) Size() (h, w int)     { return s.parent.Size() }

// Load returns the parent's example idx[i].
func (s *subset) Load(i int, augment bool, rng *rand.Rand) (Example, error) {
	if err := checkIndex(i, len(s.idx)); err != nil {
		return Example{}, err
	}
	return s.parent.Load(s.idx[i], augment, rng)
}
