package data

import "math/rand/v2"

// Random streams are derived from the user's seed and a domain constant, so that the shuffling
// order, the augmentation, the split and the synthetic images never share a sequence.
const (
	domainShuffle uint64 = iota + 1
	domainAugment
	domainSplit
	domainShapes
)

// splitmix64 is the SplitMix64 finaliser, a bijective 64-bit mixer: nearby inputs (epochs 1 and 2,
// indices 7 and 8) give unrelated outputs.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// newRand returns a PCG generator determined by (seed, domain, a, b) alone, for example
// (Seed, domainAugment, epoch, index).
func newRand(seed int64, domain, a, b uint64) *rand.Rand {
	h1 := splitmix64(splitmix64(uint64(seed)) ^ domain)
	h2 := splitmix64(splitmix64(h1^a) ^ b)
	return rand.New(rand.NewPCG(h1, h2))
}
