package dnx

import (
	"errors"
	"fmt"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/converters/pytorch"
	"github.com/dnx-ml/dnx/models"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/imageio"
	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor/npy"
	"github.com/dnx-ml/dnx/runtime/train"
)

// Sentinel errors, checkable with errors.Is. Every error this package returns keeps the message
// of the layer that found the problem (naming the file, node, input or key at fault) and matches
// at most a few of these, so a caller can decide what to do without parsing text: report bad
// input to its user, refuse a model, retry with a larger budget.
//
// Some are the internal packages' own values, re-exported so that an error from deep inside
// matches without translation; the others are this package's and are attached to the internal
// errors they summarize.
var (
	// ErrInput is matched by errors about data a caller supplies: a tensor whose dtype, rank or
	// dims do not fit the model, a missing or unknown input name, a shape that does not match
	// the data, labels that do not fit a batch, an image or .npy file that cannot be decoded, a
	// training state that does not belong to the trainer.
	ErrInput = exec.ErrInput

	// ErrInvalidModel is matched by errors about bytes that are not a model dnx can load: protobuf
	// that does not parse, a graph with dangling or duplicate names or a cycle, corrupt or
	// misplaced tensor data.
	ErrInvalidModel = errors.New("invalid model")

	// ErrUnsupported is matched by errors about valid models dnx does not handle: an operator
	// without a kernel, an opset, IR version or element type outside what dnx knows, a graph the
	// trainer cannot differentiate.
	ErrUnsupported = errors.New("unsupported model")

	// ErrOverBudget is matched by errors about an allocation larger than the memory budget
	// (Options.MaxMemory and friends): the model, the inputs or the configuration ask for more
	// than the caller allowed, and nothing was allocated.
	ErrOverBudget = membudget.ErrOverBudget

	// ErrOptions is matched by errors about an Options, BuildOptions, ConvertOptions or
	// TrainOptions value that cannot be used: a negative thread count, an unknown device name or
	// optimizer, a frozen prefix that matches nothing.
	ErrOptions = errors.New("invalid options")

	// ErrDevice is matched by the error of a session asked to run on a device this build cannot
	// use (today: any CUDA device). The message says what is missing.
	ErrDevice = errors.New("device not available")

	// ErrConfig is matched by errors about a DenseNetConfig that cannot be built.
	ErrConfig = builders.ErrConfig

	// ErrUnknownPreset is matched by the error for a preset name that does not exist; its message
	// lists the valid names.
	ErrUnknownPreset = models.ErrUnknownPreset

	// ErrCheckpoint is matched by errors about a checkpoint: a PyTorch one (a malformed file, a
	// pickle that references code, or tensors that do not fit the architecture: each missing key,
	// unexpected key and shape mismatch is listed), or a fine-tuning checkpoint Trainer.Fit cannot
	// resume from.
	ErrCheckpoint = errors.New("bad checkpoint")

	// ErrDiverged is matched by the error of a training step whose loss or gradients are not
	// finite; the step was not applied.
	ErrDiverged = train.ErrDiverged

	// ErrClosed is matched by the error of Session.Run after Session.Close.
	ErrClosed = errors.New("session closed")
)

// tagged is an error that reads exactly like err but also matches sentinel with errors.Is. It
// lets this package attach its few sentinels to the many the internal packages define without
// adding a second "invalid model: corrupt ONNX data: ..." prefix to messages that already say it.
type tagged struct {
	err      error
	sentinel error
}

func (e *tagged) Error() string   { return e.err.Error() }
func (e *tagged) Unwrap() []error { return []error{e.err, e.sentinel} }

// tag returns err marked with sentinel (nil for a nil err, err itself when it already matches).
func tag(err, sentinel error) error {
	if err == nil || errors.Is(err, sentinel) {
		return err
	}
	return &tagged{err: err, sentinel: sentinel}
}

// wrapf prefixes err with "dnx: " and the operation, and marks it with this package's sentinel
// for the internal sentinels it matches. Errors of the operating system (a missing file) and of
// the context (cancellation) pass through unmarked, still matchable with errors.Is.
func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	err = classify(err)
	return fmt.Errorf("dnx: %s: %w", fmt.Sprintf(format, args...), err)
}

// classify marks err with the sentinel of this package that summarizes it, if any. Order
// matters: "unsupported" is checked before "invalid" because onnx.ErrUnsupported errors about a
// model are valid ONNX that dnx merely does not handle.
func classify(err error) error {
	for _, c := range []struct {
		sentinel error
		causes   []error
	}{
		{ErrUnsupported, []error{onnx.ErrUnsupported, graph.ErrUnsupportedOpset, graph.ErrNotExportable, ops.ErrUnsupportedOp, train.ErrGraph}},
		{ErrInvalidModel, []error{onnx.ErrCorrupt, onnx.ErrExternalData, graph.ErrInvalidGraph, ops.ErrAttr, ops.ErrShape, ops.ErrArity}},
		{ErrCheckpoint, []error{pytorch.ErrFormat, pytorch.ErrForbidden, pytorch.ErrStateDict, train.ErrCheckpoint}},
		{ErrOptions, []error{train.ErrOptions, builders.ErrOptions, device.ErrUnknownDevice}},
		{ErrInput, []error{train.ErrInput, train.ErrState, imageio.ErrImage, npy.ErrFormat, npy.ErrUnsupported}},
	} {
		for _, cause := range c.causes {
			if errors.Is(err, cause) {
				return tag(err, c.sentinel)
			}
		}
	}
	return err
}
