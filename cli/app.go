// Package cli is the dnx command line: `dnx inspect` describes a model, `dnx run` runs it on
// tensor, NumPy or image files, `dnx bench` times it, `dnx build`/`dnx models`/`dnx convert` make
// and convert models, `dnx finetune` trains them, `dnx demo` fine-tunes a small DenseNet with
// no files at all, and `dnx serve` serves models over the Open Inference Protocol (KServe v2).
//
// Every failure ends the process with a non-zero status and exactly one line on stderr, prefixed
// with "dnx: " and naming the file (and, for model errors, the node) at fault. A wrong command
// line (flags, arguments) exits with status 2 and is found before any file is read; a file,
// model, data set or limit (--max-memory) that refuses a well-formed command line exits with
// status 1, and so does an output that would overwrite an input (checkFiles); a panic, which is
// always a dnx bug, is recovered into an "internal error" line and status 3 (README.md, "Exit
// status"). SIGINT (Ctrl-C) and SIGTERM cancel the running command,
// which stops cleanly (dnx finetune saves its checkpoint first), and the status is then that of a
// process killed by the signal: 130 and 143. A second signal ends the process at once.
//
// Flags may follow the positional arguments (`dnx inspect model.onnx --json`): the arguments are
// reordered before urfave/cli, which stops at the first positional argument, parses them.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	ucli "github.com/urfave/cli/v2"
)

// Version is the dnx version reported by `dnx bench --json` and `dnx inspect`.
const Version = "0.1.0"

// Exit statuses.
const (
	exitOK       = 0
	exitError    = 1 // the command failed: bad model, bad input, write error
	exitUsage    = 2 // the command line is wrong
	exitInternal = 3 // a panic: a bug in dnx
)

// usageError marks errors about the command line itself.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// Main runs the dnx command line with os.Args, cancelling the running command on SIGINT or
// SIGTERM, and returns the process exit status.
func Main() int {
	ctx, stop := notifySignals(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args, os.Stdout, os.Stderr)
}

// signalCause is the cause (context.Cause) of a context that notifySignals cancelled. Run exits
// with 128 + the signal's number when the command fails after it, as a shell reports a process
// the signal killed: 130 for SIGINT, 143 for SIGTERM.
type signalCause struct{ sig os.Signal }

func (e signalCause) Error() string { return signalName(e.sig) + " received" }

// status returns the exit status for the signal.
func (e signalCause) status() int {
	if s, ok := e.sig.(syscall.Signal); ok && s > 0 && s < 128 {
		return 128 + int(s)
	}
	return exitError
}

// signalName returns "SIGINT", "SIGTERM" or the signal's description.
func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// contextSignal returns the signal that cancelled ctx, if any.
func contextSignal(ctx context.Context) (signalCause, bool) {
	var sc signalCause
	ok := errors.As(context.Cause(ctx), &sc)
	return sc, ok
}

// notifySignals returns a copy of parent that is cancelled, with a signalCause, when one of sigs
// arrives. The first signal only cancels: the command stops cleanly. Signal delivery is then
// restored to the default, so a second one ends the process at once (with no clean-up). stop
// releases the resources and the signals.
func notifySignals(parent context.Context, sigs ...os.Signal) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			cancel(signalCause{s})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(context.Canceled)
	}
}

// Run runs the command line args (args[0] is the program name) with the given output streams and
// returns the exit status. It never panics. When ctx was cancelled by a signal (see
// notifySignals) and the command fails, the status is the signal's (130, 143).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) (status int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "dnx: internal error: %v\n", oneLine(fmt.Sprint(r)))
			status = exitInternal
		}
	}()
	app := NewApp(stdout, stderr)
	err := app.RunContext(ctx, reorderArgs(app, args))
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "dnx: %s\n", oneLine(err.Error()))
	if sc, ok := contextSignal(ctx); ok {
		return sc.status()
	}
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitError
}

// NewApp returns the dnx application writing to stdout and stderr. It never calls os.Exit:
// errors are returned from RunContext.
func NewApp(stdout, stderr io.Writer) *ucli.App {
	app := &ucli.App{
		Name:  "dnx",
		Usage: "inspect, run and fine-tune DenseNet ONNX models in pure Go",
		Description: "dnx reads ONNX models (.onnx) and runs them on the CPU with no dependencies.\n" +
			"Input tensors come from ONNX TensorProto files (.pb), NumPy arrays (.npy) or images (.png, .jpg).",
		Writer:                    stdout,
		ErrWriter:                 stderr,
		HideVersion:               true,
		DisableSliceFlagSeparator: true, // --shape x=1,3,224,224 and file names keep their commas
		ExitErrHandler:            func(*ucli.Context, error) {},
		OnUsageError:              onUsageError,
		Commands:                  []*ucli.Command{inspectCommand(), runCommand(), benchCommand(), convertCommand(), buildCommand(), modelsCommand(), finetuneCommand(), demoCommand(), serveCommand()},
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usagef("unknown command %q (commands: inspect, run, bench, convert, build, models, finetune, demo, serve; see 'dnx help')", c.Args().First())
			}
			return ucli.ShowAppHelp(c)
		},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
	}
	return app
}

// onUsageError turns a flag parsing error into a one-line usage error instead of urfave/cli's
// usage dump.
func onUsageError(c *ucli.Context, err error, isSubcommand bool) error {
	name := "dnx"
	if c.Command != nil && c.Command.Name != "" {
		name = "dnx " + c.Command.Name
	}
	msg := err.Error()
	// Go's flag package names an unknown flag with one dash, however it was typed.
	if f, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		msg = "unknown flag --" + strings.TrimLeft(f, "-")
	}
	return usagef("%s: %s (see '%s --help')", strings.TrimPrefix(name, "dnx "), msg, name)
}

// exactArgs checks that a command got n positional arguments, named in what.
func exactArgs(c *ucli.Context, what string) error {
	if n := c.Args().Len(); n != 1 {
		if n == 0 {
			return usagef("%s: missing %s argument (see 'dnx %s --help')", c.Command.Name, what, c.Command.Name)
		}
		return usagef("%s: expected one %s argument, got %d: %s", c.Command.Name, what, n, strings.Join(c.Args().Slice(), " "))
	}
	return nil
}

// reorderArgs moves a command's flags before its positional arguments, so that
// `dnx run model.onnx --input x.pb` parses like `dnx run --input x.pb model.onnx`. A flag that
// takes a value keeps the argument after it (unless written --flag=value); "--" ends the flags.
func reorderArgs(app *ucli.App, args []string) []string {
	if len(args) < 3 {
		return args
	}
	cmd := app.Command(args[1])
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		tv, ok := f.(interface{ TakesValue() bool })
		for _, n := range f.Names() {
			takesValue[n] = ok && tv.TakesValue()
		}
	}
	var flags, pos []string
	rest := args[2:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if name == "h" || name == "help" {
			// urfave/cli would read a positional argument after --help as a help topic.
			return []string{args[0], args[1], "--help"}
		}
		flags = append(flags, a)
		if strings.Contains(name, "=") {
			continue
		}
		if takesValue[name] && i+1 < len(rest) {
			flags = append(flags, rest[i+1])
			i++
		}
	}
	out := append([]string{args[0], args[1]}, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out
}

// oneLine joins a multi-line message into one line.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}
