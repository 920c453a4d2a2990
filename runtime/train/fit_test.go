package train

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/runtime/data"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// The fit tests train a two-layer DenseNet on 8x8 synthetic shapes (4 classes): 12 training
// images in batches of 4 are 3 batches per epoch, and a run of fitSteps steps ends in the middle
// of its third epoch.
const (
	fitImages = 12
	fitBatch  = 4
	fitSteps  = 7
)

func fitNet(t testing.TB) *graph.Graph {
	return builtNet(t, builders.Config{Growth: 4, Blocks: []int{2}, InitFeatures: 8, BNSize: 2, Compression: 0.5,
		Stem: builders.StemCIFAR, Classes: 4, InputSize: 8})
}

func fitOptions() Options {
	return Options{Optim: OptimConfig{Name: "sgd", LR: 0.05, Momentum: 0.9, WeightDecay: 1e-4},
		Schedule: Schedule{Kind: "cosine", WarmupSteps: 2, TotalSteps: fitSteps}, MemoryEfficient: true, Threads: 1}
}

// fitData returns the training loader (shuffled, augmented) and the validation loader.
func fitData(t testing.TB) (trainLd, valLd *data.Loader) {
	var err error
	trainLd, err = data.NewLoader(data.Shapes(fitImages, 8, 5), data.LoaderOptions{Batch: fitBatch, Shuffle: true, Augment: true, Seed: 3, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	valLd, err = data.NewLoader(data.Shapes(6, 8, 99), data.LoaderOptions{Batch: fitBatch, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	return trainLd, valLd
}

func newFitTrainer(t testing.TB, g *graph.Graph, opts Options) *Trainer {
	tr, err := New(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// handVal is the validation the tests expect: Evaluate, then the loss written out as
// -log(exp(z_y) / sum_c exp(z_c)), shifted by the row's maximum.
func handVal(t *testing.T, tr *Trainer, ld *data.Loader) ValResult {
	it := ld.Epoch(context.Background(), 0)
	defer it.Close()
	var loss float64
	var correct, n int
	for {
		b, ok := it.Next()
		if !ok {
			break
		}
		z, err := tr.Evaluate(context.Background(), b.X)
		if err != nil {
			t.Fatal(err)
		}
		k := z.Shape[1]
		vals := tensor.Data[float32](z)
		for i, y := range b.Y {
			row := vals[i*k : (i+1)*k]
			m := float64(slices.Max(row))
			var s float64
			for _, v := range row {
				s += math.Exp(float64(v) - m)
			}
			loss -= math.Log(math.Exp(float64(row[y])-m) / s)
			if slices.Index(row, slices.Max(row)) == int(y) {
				correct++
			}
			n++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return ValResult{Loss: loss / float64(n), Acc: float64(correct) / float64(n), Images: n}
}

// sameWeights reports the first parameter or statistic whose bits differ between a and b.
func sameWeights(a, b *Trainer) string {
	wa, wb := weights(a.Graph()), weights(b.Graph())
	for name, x := range wa {
		y := wb[name]
		if len(x) != len(y) {
			return name
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return name
			}
		}
	}
	return ""
}

// TestFitMatchesStepLoop checks Fit against the loop it replaces, written out by hand: the same
// steps on the same batches (bit for bit), and validation numbers equal to Evaluate and the
// loss computed by hand.
func TestFitMatchesStepLoop(t *testing.T) {
	g := fitNet(t)
	trainLd, valLd := fitData(t)
	ctx := context.Background()

	// The hand-written loop.
	ref := newFitTrainer(t, g, fitOptions())
	var refLoss []float64
	var refVal []ValResult
	for epoch, step := 0, 0; step < fitSteps; epoch++ {
		it := trainLd.Epoch(ctx, epoch)
		for step < fitSteps {
			b, ok := it.Next()
			if !ok {
				break
			}
			st, err := ref.Step(ctx, b.X, b.Y)
			if err != nil {
				t.Fatal(err)
			}
			refLoss = append(refLoss, st.Loss)
			step++
		}
		it.Close()
		refVal = append(refVal, handVal(t, ref, valLd))
	}

	tr := newFitTrainer(t, g, fitOptions())
	var loss []float64
	var val []ValResult
	var kinds []EventKind
	sum, err := Fit(ctx, tr, FitConfig{Train: trainLd, Val: valLd, Steps: fitSteps, Progress: func(ev Event) error {
		kinds = append(kinds, ev.Kind)
		switch ev.Kind {
		case EventStep:
			loss = append(loss, ev.Stats.Loss)
			if ev.Images != fitBatch || ev.LossLimit != ExplosionFactor*max(loss[0], math.Log(4)) || ev.RunSteps != ev.State.Step {
				t.Errorf("step %d: event %+v", ev.State.Step, ev)
			}
		case EventValidation:
			val = append(val, ev.Val)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(loss, refLoss) {
		t.Errorf("losses %v, the hand loop's %v", loss, refLoss)
	}
	if name := sameWeights(tr, ref); name != "" {
		t.Errorf("%s differs from the hand loop's", name)
	}
	if len(val) != len(refVal) {
		t.Fatalf("%d validations, want %d", len(val), len(refVal))
	}
	for i, v := range val {
		w := refVal[i]
		if math.Abs(v.Loss-w.Loss) > 1e-12*max(1, w.Loss) || v.Acc != w.Acc || v.Images != w.Images {
			t.Errorf("validation %d: %+v, by hand %+v", i+1, v, w)
		}
	}
	// Three epochs: steps, the end of the epoch and its validation each time.
	wantKinds := []EventKind{0, 0, 0, 1, 2, 0, 0, 0, 1, 2, 0, 1, 2}
	if !slices.Equal(kinds, wantKinds) {
		t.Errorf("events %v, want %v", kinds, wantKinds)
	}
	st := sum.State
	if st.Step != fitSteps || st.Epoch != 2 || st.Batch != 1 || st.Running.Images != fitBatch || st.LastVal == nil ||
		*st.LastVal != val[len(val)-1] || sum.Images != fitSteps*fitBatch || sum.Epochs != 3 || sum.Batches != 3 {
		t.Errorf("summary %+v, state %+v", sum, st)
	}
}

// TestFitResume interrupts a run after various steps (mid-epoch, at the end of an epoch before
// its validation), checks that the cancellation saved a checkpoint, resumes from it on a fresh
// trainer and checks that the result is the uninterrupted run's, bit for bit.
func TestFitResume(t *testing.T) {
	g := fitNet(t)
	trainLd, valLd := fitData(t)
	whole := newFitTrainer(t, g, fitOptions())
	full, err := Fit(context.Background(), whole, FitConfig{Train: trainLd, Val: valLd, Steps: fitSteps})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		cancelAt int // the step after which ctx is cancelled
		epoch    int // the saved position
		batch    int
	}{
		{"after the first step", 1, 0, 1},
		{"at the end of an epoch, before its validation", 3, 0, 3},
		{"mid-epoch", 5, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ck")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ck := CheckpointConfig{Dir: dir, SaveOnCancel: true, Settings: map[string]string{"k": "v"}, Seeds: Seeds{Data: 3}}
			a := newFitTrainer(t, g, fitOptions())
			_, err := Fit(ctx, a, FitConfig{Train: trainLd, Val: valLd, Steps: fitSteps, Checkpoint: ck, Progress: func(ev Event) error {
				if ev.Kind == EventStep && ev.State.Step == tc.cancelAt {
					cancel()
				}
				return nil
			}})
			var stop *CancelledError
			if !errors.As(err, &stop) || !errors.Is(err, context.Canceled) || !stop.Saved {
				t.Fatalf("cancelled run: %v", err)
			}
			b := newFitTrainer(t, g, fitOptions())
			meta, err := LoadCheckpoint(dir, b)
			if err != nil {
				t.Fatal(err)
			}
			if meta.Step != tc.cancelAt || meta.Epoch != tc.epoch || meta.Batch != tc.batch || meta.Settings["k"] != "v" || meta.Seeds.Data != 3 {
				t.Fatalf("checkpoint at %+v, want step %d (epoch %d, batch %d)", meta, tc.cancelAt, tc.epoch, tc.batch)
			}
			sum, err := Fit(context.Background(), b, FitConfig{Train: trainLd, Val: valLd, Steps: fitSteps, Checkpoint: ck, Start: meta.FitState})
			if err != nil {
				t.Fatal(err)
			}
			if name := sameWeights(b, whole); name != "" {
				t.Errorf("%s differs from the uninterrupted run's", name)
			}
			got, want := sum.State, full.State
			if got.Step != want.Step || got.Epoch != want.Epoch || got.Batch != want.Batch || got.Running != want.Running ||
				*got.LastVal != *want.LastVal || *got.LastEpoch != *want.LastEpoch || *got.FirstLoss != *want.FirstLoss {
				t.Errorf("resumed run ends at %+v, the uninterrupted one at %+v", got, want)
			}
		})
	}
}

func TestFitCancelWithoutCheckpoint(t *testing.T) {
	g := fitNet(t)
	trainLd, _ := fitData(t)
	dir := filepath.Join(t.TempDir(), "ck")
	for _, tc := range []struct {
		name string
		ck   CheckpointConfig
	}{
		{"not asked", CheckpointConfig{Dir: dir}},
		{"no folder", CheckpointConfig{SaveOnCancel: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tr := newFitTrainer(t, g, fitOptions())
			sum, err := Fit(ctx, tr, FitConfig{Train: trainLd, Steps: fitSteps, Checkpoint: tc.ck, Progress: func(ev Event) error {
				cancel()
				return nil
			}})
			var stop *CancelledError
			if !errors.As(err, &stop) || stop.Saved || sum.State.Step != 1 || tr.StepCount() != 1 {
				t.Errorf("err %v, state %+v", err, sum.State)
			}
			if _, _, err := ReadCheckpoint(dir); err == nil {
				t.Errorf("a checkpoint was saved")
			}
		})
	}
	// Cancelled before the first step: nothing to save.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tr := newFitTrainer(t, g, fitOptions())
	_, err := Fit(ctx, tr, FitConfig{Train: trainLd, Steps: fitSteps, Checkpoint: CheckpointConfig{Dir: dir, SaveOnCancel: true}})
	var stop *CancelledError
	if !errors.As(err, &stop) || stop.Saved || tr.StepCount() != 0 {
		t.Errorf("cancelled before the first step: %v", err)
	}
}

// TestFitDiverges checks both divergence rules: a non-finite loss stops the run before its
// update, a loss beyond the limit right after it; neither saves a checkpoint.
func TestFitDiverges(t *testing.T) {
	for _, tc := range []struct {
		name    string
		poison  bool // NaN classifier weights: the first loss is NaN
		opts    func(*Options)
		applied bool
	}{
		{"non-finite loss", true, func(*Options) {}, false},
		// Adam at a learning rate of 1000 takes the loss far beyond 100 x its start, finite.
		{"exploding loss", false, func(o *Options) { o.Optim = OptimConfig{Name: "adam", LR: 1000} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := fitNet(t)
			if tc.poison {
				for _, v := range g.Initializers {
					if strings.Contains(v.Name, "classifier") {
						for i := range tensor.Data[float32](v.Const) {
							tensor.Data[float32](v.Const)[i] = float32(math.NaN())
						}
					}
				}
			}
			opts := fitOptions()
			tc.opts(&opts)
			trainLd, _ := fitData(t)
			tr := newFitTrainer(t, g, opts)
			before := newFitTrainer(t, g, opts)
			dir := filepath.Join(t.TempDir(), "ck")
			var steps []int
			sum, err := Fit(context.Background(), tr, FitConfig{Train: trainLd, Steps: 50, Checkpoint: CheckpointConfig{Dir: dir, Every: 1, SaveOnCancel: true},
				Progress: func(ev Event) error {
					if ev.Kind == EventStep {
						steps = append(steps, ev.State.Step)
					}
					return nil
				}})
			var div *DivergedError
			if !errors.As(err, &div) || !errors.Is(err, ErrDiverged) || div.Applied != tc.applied {
				t.Fatalf("err %v, want a DivergedError (applied %v)", err, tc.applied)
			}
			if !strings.Contains(err.Error(), "step "+strconv.Itoa(div.Step)) {
				t.Errorf("%q does not name step %d", err, div.Step)
			}
			meta, _, ckErr := ReadCheckpoint(dir)
			switch {
			case !tc.applied:
				// No update: the weights and the step count are those of the start.
				if name := sameWeights(tr, before); name != "" || tr.StepCount() != div.Step-1 || div.Step != 1 || len(steps) != 0 {
					t.Errorf("step %d refused, but %q changed (step count %d)", div.Step, name, tr.StepCount())
				}
				if ckErr == nil {
					t.Errorf("a checkpoint was saved")
				}
			default:
				if !(div.Loss > div.Limit) || div.Limit != ExplosionFactor*max(div.FirstLoss, math.Log(4)) || div.Classes != 4 || sum.State.Step != div.Step {
					t.Errorf("diverged step %+v, state %+v", div, sum.State)
				}
				// The checkpoint is the last one before the diverged step.
				if ckErr != nil || meta.Step != div.Step-1 {
					t.Errorf("checkpoint at step %d (%v), want %d", meta.Step, ckErr, div.Step-1)
				}
			}
		})
	}
}

func TestFitRejects(t *testing.T) {
	g := fitNet(t)
	trainLd, _ := fitData(t)
	tr := newFitTrainer(t, g, fitOptions())
	for _, tc := range []struct {
		name string
		cfg  FitConfig
		want string
	}{
		{"no data", FitConfig{Steps: 1}, "training batches"},
		{"no steps", FitConfig{Train: trainLd}, "0 steps"},
		{"position off the epoch", FitConfig{Train: trainLd, Steps: 9, Start: FitState{Epoch: 1, Batch: 1, Step: 2}}, "does not fit 3 batches"},
		{"past the end", FitConfig{Train: trainLd, Steps: 2, Start: FitState{Epoch: 1, Step: 3}}, "past the run's 2 steps"},
		{"trainer elsewhere", FitConfig{Train: trainLd, Steps: 9, Start: FitState{Epoch: 1, Step: 3}}, "the trainer has taken 0 steps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Fit(context.Background(), tr, tc.cfg)
			if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want ErrOptions saying %q", err, tc.want)
			}
		})
	}
}

func TestCrossEntropySum(t *testing.T) {
	for _, tc := range []struct {
		name    string
		z       []float32
		labels  []int64
		loss    float64
		correct int
		err     bool
	}{
		// Row (0, ln 3): p(1) = 0.75, label 1: loss -ln 0.75, correct.
		{"confident", []float32{0, float32(math.Log(3))}, []int64{1}, -math.Log(0.75), 1, false},
		// Equal logits: loss ln 2, the tie goes to class 0.
		{"tie", []float32{1, 1}, []int64{1}, math.Log(2), 0, false},
		{"two rows", []float32{0, float32(math.Log(3)), 1, 1}, []int64{1, 1}, -math.Log(0.75) + math.Log(2), 1, false},
		{"label out of range", []float32{1, 1}, []int64{2}, 0, 0, true},
		{"labels and rows differ", []float32{1, 1}, []int64{0, 1}, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := tensor.FromSlice(tensor.Shape{len(tc.z) / 2, 2}, tc.z)
			loss, correct, err := CrossEntropySum(z, tc.labels)
			if tc.err {
				if !errors.Is(err, ErrInput) {
					t.Errorf("err %v, want ErrInput", err)
				}
				return
			}
			if err != nil || correct != tc.correct || math.Abs(loss-tc.loss) > 1e-6 {
				t.Errorf("CrossEntropySum = %g, %d, %v; want %g, %d", loss, correct, err, tc.loss, tc.correct)
			}
		})
	}
}
