package train

import (
	"context"
	"math"
	"runtime"
	"testing"
)

// TestFusedChunks checks the fused backward pass of a BatchNormalization-ReLU and the
// convolution reading its virtual output (convUnit.fused): computing the input gradient a few
// channels at a time instead of all at once gives the same step bit for bit. It also checks that
// the plan of a DenseNet-BC uses both kinds of fusion, in place and through dz.
func TestFusedChunks(t *testing.T) {
	g := builtNet(t, bcConfig())
	x, labels := randomBatch(4, 6, []int{3, 16, 16}, 10)
	opts := DefaultOptions()
	opts.Threads = 2
	var tr [2]*Trainer
	for i := range tr {
		var err error
		if tr[i], err = New(g, opts); err != nil {
			t.Fatal(err)
		}
	}
	p, err := tr[1].planFor(x.Shape, opts.Threads)
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 5
	var inPlace, split int
	for _, u := range p.units {
		c, ok := u.(*convUnit)
		switch {
		case !ok || !c.fused:
		case c.inPlace:
			inPlace++
		case c.chunk > chunk:
			c.chunk = chunk // dz is larger than needed now
			split++
		}
	}
	if inPlace == 0 || split == 0 {
		t.Fatalf("%d fused convolutions in place, %d through dz with more than %d channels; want some of each", inPlace, split, chunk)
	}
	for step := 0; step < 3; step++ {
		var st [2]StepStats
		for i := range tr {
			if st[i], err = tr[i].Step(context.Background(), x, labels); err != nil {
				t.Fatal(err)
			}
		}
		if st[1].Loss != st[0].Loss {
			t.Errorf("step %d: loss %.9f in chunks of %d channels, %.9f", step, st[1].Loss, chunk, st[0].Loss)
		}
		for j, a := range tr[0].params {
			b := tr[1].params[j]
			for k := range a.grad {
				if math.Float32bits(a.grad[k]) != math.Float32bits(b.grad[k]) {
					t.Fatalf("step %d: gradient of %q element %d: %g in chunks of %d channels, %g", step, a.name, k, b.grad[k], chunk, a.grad[k])
				}
			}
		}
	}
}

// TestStepAllocations checks that a training step after the first allocates (almost) nothing:
// the working memory outside the arena (packed weights and gradients) is kept from step to step
// and from layer to layer. Garbage made per step is what the collector lets pile up before it
// runs, on top of the arena. The batch makes the 3x3 convolutions' weight gradients take
// several chunks and the 1x1 ones' one, which a reused packed gradient must both serve.
func TestStepAllocations(t *testing.T) {
	g := builtNet(t, bcConfig())
	x, labels := randomBatch(5, 16, []int{3, 16, 16}, 10)
	opts := DefaultOptions()
	opts.Threads = 2
	tr, err := New(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	step := func() {
		if _, err := tr.Step(context.Background(), x, labels); err != nil {
			t.Fatal(err)
		}
	}
	step()
	step()
	const steps = 3
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range steps {
		step()
	}
	runtime.ReadMemStats(&after)
	perStep := (after.TotalAlloc - before.TotalAlloc) / steps
	arena := uint64(tr.plans[len(tr.plans)-1].totalBytes)
	t.Logf("%d bytes allocated per step; arena %d bytes", perStep, arena)
	// Per-pass bookkeeping (the Workers, closures) is a few kilobytes; a per-layer buffer
	// made afresh would be tens of kilobytes at this size, and megabytes at full size.
	if limit := uint64(64 << 10); perStep > limit {
		t.Errorf("a step allocates %d bytes, want at most %d (the arena is %d)", perStep, limit, arena)
	}
}
