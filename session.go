package dnx

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/dnx-ml/dnx/runtime/device"
	"github.com/dnx-ml/dnx/runtime/exec"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Options configure a Session. The zero value runs on the CPU with one worker per core and the
// default memory budget.
type Options struct {
	// Threads is the number of worker threads; 0 means one per core (GOMAXPROCS). Negative
	// values and more than 256 (or 4 per core on larger machines) are refused: beyond a few per
	// core, threads only add scheduling and memory.
	Threads int
	// Device names where the model runs: "" or "cpu". "cuda" and "cuda:N" are recognized, but
	// this build has no CUDA kernels, so they fail with an error matching ErrDevice that says
	// what dnx found (no driver, no GPU, or a GPU it cannot use yet); a session never silently
	// falls back to the CPU.
	Device string
	// NoSpin makes idle worker threads block at once instead of polling briefly for the next
	// parallel loop: slightly slower, but the CPU time polling would take goes to the other
	// processes of a shared machine.
	NoSpin bool
	// MaxMemory bounds, in bytes, every tensor and activation arena whose size the model or the
	// inputs decide, so that a hostile model or an oversized batch fails (ErrOverBudget) instead
	// of exhausting memory. 0 means the default budget (a fraction of physical memory); a
	// negative value means no bound.
	MaxMemory int64
}

// maxThreads is the largest Options.Threads: 256, or 4 per CPU on larger machines (the limit
// dnx's command line applies too).
func maxThreads() int { return max(256, 4*runtime.NumCPU()) }

// Session runs a Model. Creating it optimizes a copy of the model's graph (BatchNormalization
// folding, operator fusion) once; each distinct set of input shapes is then compiled on first use
// into a plan with a static memory layout, which later Runs of the same shapes reuse.
//
// A batch of at least one row per thread runs in lanes when the model keeps batch rows apart (as
// CNNs do): one part of the batch per thread, each running the whole model on its thread, which
// is faster than splitting every operator over the threads. Each row's result is bit for bit the
// same as when it runs alone, whatever the batch. A Run that starts while another is running
// runs in a lane of its own, with the same results.
//
// A Session is safe for concurrent use: Runs share the compiled plans and the worker threads but
// no per-run state. Close it when done to stop the worker threads.
type Session struct {
	model *Model
	s     *exec.Session

	// mu is held for reading by every Run and for writing by Close, so that Close waits for
	// running calls instead of stopping the workers under them.
	mu     sync.RWMutex
	closed bool
}

// NewSession prepares model for running with opts. It fails when the model holds an operator
// dnx has no kernel for (ErrUnsupported, naming the node), or when opts cannot be used
// (ErrOptions, ErrDevice).
func NewSession(model *Model, opts Options) (*Session, error) {
	if model == nil {
		return nil, fmt.Errorf("dnx: new session: %w: nil model", ErrOptions)
	}
	if err := checkThreads(opts.Threads); err != nil {
		return nil, fmt.Errorf("dnx: new session: %w", err)
	}
	if err := checkDevice(opts.Device); err != nil {
		return nil, wrapf(err, "new session")
	}
	s, err := exec.New(model.g, exec.Options{Threads: opts.Threads, NoSpin: opts.NoSpin, MaxMemory: opts.MaxMemory})
	if err != nil {
		return nil, wrapf(err, "new session")
	}
	return &Session{model: model, s: s}, nil
}

// checkThreads validates a thread count option.
func checkThreads(n int) error {
	if n < 0 || n > maxThreads() {
		return fmt.Errorf("%w: Threads %d: want 0 (one per core) to %d", ErrOptions, n, maxThreads())
	}
	return nil
}

// checkDevice accepts "" and "cpu"; for any other name it returns the reason dnx cannot run
// there, matching ErrOptions for a name that is no device and ErrDevice for a device that is
// unavailable.
func checkDevice(name string) error {
	if name == "" {
		return nil
	}
	spec, err := device.Parse(name)
	if err != nil {
		return err // matches device.ErrUnknownDevice, classified as ErrOptions
	}
	if spec.Kind == device.CPU {
		return nil
	}
	err = device.Check(spec)
	if err == nil {
		// device.Check refuses every CUDA device today; should it start accepting them before
		// this package can run on them, say so rather than run on the CPU.
		err = fmt.Errorf("sessions run on the CPU only in this version")
	}
	return fmt.Errorf("%w: %s: %w", ErrDevice, spec, err)
}

// Model returns the model the session runs.
func (s *Session) Model() *Model { return s.model }

// Run feeds the named inputs and returns every output of the model by name. Each model input
// must be given exactly once, with the declared element type, rank and fixed dims; symbolic
// dims may take any size (at least 1), the same size wherever the same name appears. Errors
// about the inputs match ErrInput and name the input and dim at fault.
//
// ctx is checked between operators: a cancelled or expired context stops the run with an error
// matching ctx.Err() (context.Canceled or context.DeadlineExceeded).
func (s *Session) Run(ctx context.Context, inputs map[string]*Tensor) (map[string]*Tensor, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("dnx: run: %w", ErrClosed)
	}
	in := make(map[string]*tensor.Tensor, len(inputs))
	for name, t := range inputs {
		if t == nil || t.t == nil {
			return nil, fmt.Errorf("dnx: run: %w: input %q is nil", ErrInput, name)
		}
		in[name] = t.t
	}
	out, err := s.s.RunNamed(ctx, in)
	if err != nil {
		return nil, wrapf(err, "run")
	}
	res := make(map[string]*Tensor, len(out))
	for name, t := range out {
		res[name] = wrapTensor(t)
	}
	return res, nil
}

// Close stops the session's worker threads, after waiting for Runs in progress. Later Runs fail
// with ErrClosed. Closing twice is harmless.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.s.Close()
	}
	return nil
}
