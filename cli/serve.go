package cli

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/runtime/membudget"
	"github.com/dnx-ml/dnx/serve"
)

func serveCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "serve",
		Usage:     "serve models over the Open Inference Protocol (KServe v2 / Triton): REST, gRPC, Prometheus metrics",
		ArgsUsage: "MODEL.onnx|NAME=MODEL.onnx ...",
		Description: "Each model is served under its file's stem, or NAME; --model-repository DIR serves a folder in\n" +
			"Triton's layout instead (DIR/NAME/VERSION/model.onnx). REST answers under /v2 on --http, gRPC\n" +
			"(inference.GRPCInferenceService) on --grpc, and Prometheus metrics under /metrics on --metrics;\n" +
			"\"off\" turns a listener off. Requests for the same model that queue together, or are being\n" +
			"received within --max-queue-delay of the first, run as one batch of up to --max-batch rows\n" +
			"(--max-batch 1: no batching); a request alone runs at once on all --threads, and a batch of\n" +
			"at least one row per thread in lanes, one per thread. Beyond --max-queue waiting\n" +
			"requests, new ones get 503 at once. SIGTERM or SIGINT stops accepting, finishes the requests in\n" +
			"flight and exits 0. Logs (log/slog) go to stderr.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "model-repository", Usage: "serve the models of `DIR` (DIR/NAME/VERSION/model.onnx)"},
			&ucli.StringFlag{Name: "http", Value: ":8000", Usage: "REST `ADDR` (host:port, or off)"},
			&ucli.StringFlag{Name: "grpc", Value: ":8001", Usage: "gRPC `ADDR` (host:port, or off)"},
			&ucli.StringFlag{Name: "metrics", Value: ":8002", Usage: "Prometheus metrics `ADDR` (host:port, or off)"},
			threadsFlag(),
			&ucli.IntFlag{Name: "instances", Value: 1, Usage: "sessions per model, each running one batch at a time"},
			&ucli.IntFlag{Name: "max-batch", Value: 8, Usage: "most rows in a dynamic batch (1: no dynamic batching)"},
			&ucli.IntFlag{Name: "preferred-batch", Usage: "run a batch at once when it reaches `N` rows (default: --max-batch)"},
			&ucli.DurationFlag{Name: "max-queue-delay", Value: 2 * time.Millisecond, Usage: "how long a batch waits for requests being received to join it"},
			&ucli.IntFlag{Name: "max-queue", Value: 64, Usage: "requests that may wait per model; more get 503"},
			&ucli.StringFlag{Name: "max-request-bytes", Value: "64MiB", Usage: "largest request body or gRPC message (`SIZE`: 64MiB, 1G)"},
			&ucli.DurationFlag{Name: "request-timeout", Value: 60 * time.Second, Usage: "longest a request may take, body upload included (0: no limit)"},
			&ucli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
			&ucli.StringFlag{Name: "log-level", Value: "info", Usage: "log level: debug (one line per request), info, warn, error"},
			maxMemoryFlag(),
		},
		Action: serveAction,
	}
}

func serveAction(c *ucli.Context) error {
	repoDir := c.String("model-repository")
	args := c.Args().Slice()
	switch {
	case repoDir != "" && len(args) > 0:
		return usagef("serve: give model files or --model-repository, not both")
	case repoDir == "" && len(args) == 0:
		return usagef("serve: missing MODEL argument (or --model-repository DIR; see 'dnx serve --help')")
	}
	var specs []serve.ModelSpec
	for _, a := range args {
		s, err := serve.ParseModelArg(a)
		if err != nil {
			return usagef("serve: %v", err)
		}
		specs = append(specs, s)
	}
	threads, err := threadsOption(c)
	if err != nil {
		return err
	}
	maxMem, err := memoryLimit(c)
	if err != nil {
		return err
	}
	maxBytes, err := membudget.ParseSize(c.String("max-request-bytes"))
	if err != nil || maxBytes < 1 {
		return usagef("serve: --max-request-bytes %q: want a size such as 64MiB", c.String("max-request-bytes"))
	}
	for _, f := range []struct {
		name string
		min  int
	}{{"instances", 1}, {"max-batch", 1}, {"max-queue", 1}, {"preferred-batch", 0}} {
		if n := c.Int(f.name); n < f.min {
			return usagef("serve: --%s %d: want at least %d", f.name, n, f.min)
		}
	}
	if p := c.Int("preferred-batch"); p > c.Int("max-batch") {
		return usagef("serve: --preferred-batch %d is more than --max-batch %d", p, c.Int("max-batch"))
	}
	if d := c.Duration("max-queue-delay"); d < 0 {
		return usagef("serve: --max-queue-delay %v: want 0 or more", d)
	}
	timeout := c.Duration("request-timeout")
	if timeout < 0 {
		return usagef("serve: --request-timeout %v: want 0 (no limit) or more", timeout)
	}
	if timeout == 0 {
		timeout = -1 // serve.Config reads 0 as its default
	}
	logger, err := serveLogger(c)
	if err != nil {
		return err
	}
	addrs := map[string]string{}
	for _, name := range []string{"http", "grpc", "metrics"} {
		a := c.String(name)
		if a == "off" || a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return usagef("serve: --%s %q: want host:port (\":8000\"), or off", name, a)
		}
		addrs[name] = a
	}
	if len(addrs) == 0 {
		return usagef("serve: --http, --grpc and --metrics are all off: nothing to serve on")
	}

	// The files, now that the command line is known to be right.
	if repoDir != "" {
		if specs, err = serve.ScanRepository(repoDir); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	for _, s := range specs {
		if st, err := os.Stat(s.Path); err != nil {
			return fmt.Errorf("serve: model %s: %w", s.Name, err)
		} else if !st.Mode().IsRegular() {
			return fmt.Errorf("serve: model %s: %s is not a file", s.Name, s.Path)
		}
	}
	srv, err := serve.New(serve.Config{
		Models: specs, Threads: threads, Instances: c.Int("instances"), MaxMemory: maxMem,
		MaxBatch: c.Int("max-batch"), PreferredBatch: c.Int("preferred-batch"),
		MaxQueueDelay: c.Duration("max-queue-delay"), MaxQueue: c.Int("max-queue"),
		MaxRequestBytes: maxBytes, RequestTimeout: timeout, Version: Version, Logger: logger,
	})
	if err != nil {
		return err
	}
	var ls serve.Listeners
	for name, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range []net.Listener{ls.HTTP, ls.GRPC, ls.Metrics} {
				if l != nil {
					l.Close()
				}
			}
			return fmt.Errorf("serve: --%s: %w", name, err)
		}
		switch name {
		case "http":
			ls.HTTP = ln
		case "grpc":
			ls.GRPC = ln
		case "metrics":
			ls.Metrics = ln
		}
	}
	// Serve returns nil after a graceful shutdown on SIGTERM/SIGINT (the context's
	// cancellation), so that the process exits 0 as orchestrators expect of a clean stop.
	return srv.Serve(c.Context, ls)
}

// serveLogger builds the slog logger --log-format and --log-level ask for, writing to stderr.
func serveLogger(c *ucli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usagef("serve: --log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.String("log-format")) {
	case "text":
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	}
	return nil, usagef("serve: --log-format %q: want text or json", c.String("log-format"))
}
