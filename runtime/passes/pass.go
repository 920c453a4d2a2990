package passes

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dnx-ml/dnx/runtime/graph"
)

// Pass is one graph rewrite.
type Pass interface {
	// Name identifies the pass in errors and logs, such as "FoldConvBN".
	Name() string
	// Run rewrites g wherever the pass applies and reports whether anything changed. A pass that
	// does not apply returns (false, nil); an error means g is corrupt.
	Run(g *graph.Graph) (changed bool, err error)
}

// ErrNoFixedPoint is returned by a Pipeline whose passes still change the graph after MaxRounds
// rounds: two passes undo each other. The graph is valid but may not be fully optimized.
var ErrNoFixedPoint = errors.New("passes did not reach a fixed point")

// DefaultMaxRounds is the round cap of a Pipeline with MaxRounds 0. Every dnx pass only ever
// shrinks or fuses the graph, so real models settle in two or three rounds.
const DefaultMaxRounds = 10

// Pipeline runs Passes in order, round after round, until a round changes nothing. After each
// pass that reports a change it validates the graph, so a faulty pass is named at once rather
// than by a later crash; after the last round it re-infers every type. A Pipeline is itself a
// Pass, so pipelines nest.
type Pipeline struct {
	Label     string
	Passes    []Pass
	MaxRounds int // 0 means DefaultMaxRounds
}

// Name returns the pipeline's label.
func (p *Pipeline) Name() string { return p.Label }

// Run implements Pass. Errors name the pass that failed or left an invalid graph.
func (p *Pipeline) Run(g *graph.Graph) (bool, error) {
	rounds := p.MaxRounds
	if rounds <= 0 {
		rounds = DefaultMaxRounds
	}
	changed := false
	for round := 0; round < rounds; round++ {
		roundChanged := false
		for _, pass := range p.Passes {
			c, err := pass.Run(g)
			if err != nil {
				return changed || roundChanged, fmt.Errorf("pass %s: %w", pass.Name(), err)
			}
			if !c {
				continue
			}
			roundChanged = true
			if err := g.Validate(); err != nil {
				return true, fmt.Errorf("pass %s left an invalid graph: %w", pass.Name(), err)
			}
		}
		if !roundChanged {
			return changed, nil
		}
		changed = true
		if err := g.InferTypes(); err != nil {
			return true, fmt.Errorf("%s: type inference after round %d: %w", p.Label, round+1, err)
		}
	}
	return changed, fmt.Errorf("%s: %w after %d rounds", p.Label, ErrNoFixedPoint, rounds)
}

// Inference returns the full inference pipeline: eliminations, constant folding, Conv-BN folding,
// average pools moved before their 1x1 convolutions, the BN-ReLU prologue fusions into FusedConv
// and FusedAveragePool, the Conv-Add residual and Conv-activation epilogue fusions, the Sigmoid-Mul fusion into SiLU, the
// HardSigmoid-Mul fusion into HardSwish, and dead code elimination. Its result runs on dnx only (graph.Export refuses the fused operators).
func Inference() *Pipeline {
	return &Pipeline{Label: "Inference", Passes: []Pass{
		EliminateIdentity{},
		EliminateZeroPad{},
		FoldConstants{},
		FoldConvBN{},
		PoolBeforePointwiseConv{},
		FuseBNReluConv{},
		FuseConvAdd{},
		FuseConvActivation{},
		FuseSiLU{},
		FuseHardSwish{},
		DeadCodeElimination{},
	}}
}

// Portable returns the passes whose result is still standard ONNX, runnable by any ONNX runtime:
// eliminations, constant folding, Conv-BN folding, average pools moved before their 1x1
// convolutions, and dead code elimination. The graph stays exportable with graph.Export (the
// name says what the result is, not that it exports anything).
func Portable() *Pipeline {
	return &Pipeline{Label: "Portable", Passes: []Pass{
		EliminateIdentity{},
		EliminateZeroPad{},
		FoldConstants{},
		FoldConvBN{},
		PoolBeforePointwiseConv{},
		DeadCodeElimination{},
	}}
}

// Training returns the passes safe before training: eliminations and dead code elimination only.
// BatchNormalization is not folded (its parameters and statistics are trained) and Dropout is
// kept (a trainer switches it to training mode).
func Training() *Pipeline {
	return &Pipeline{Label: "Training", Passes: []Pass{
		EliminateIdentity{KeepDropout: true},
		EliminateZeroPad{},
		DeadCodeElimination{},
	}}
}

// forEachNode calls fn on each node of a snapshot of g's node list, skipping nodes an earlier
// call removed, and reports whether any call changed the graph.
func forEachNode(g *graph.Graph, fn func(n *graph.Node) (bool, error)) (bool, error) {
	changed := false
	for _, n := range slices.Clone(g.Nodes) {
		if !slices.Contains(g.Nodes, n) {
			continue
		}
		c, err := fn(n)
		if err != nil {
			return changed, fmt.Errorf("%s: %w", n, err)
		}
		changed = changed || c
	}
	return changed, nil
}
