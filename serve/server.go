package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/dnx-ml/dnx/serve/inferencepb"
)

// Config configures a Server. New fills in the zero values with the defaults listed.
type Config struct {
	// Models are the model versions to serve; at least one.
	Models []ModelSpec
	// Threads is each session's worker threads (0: one per CPU); Instances the sessions per
	// model version (default 1), each running one batch at a time.
	Threads, Instances int
	// MaxMemory is each session's memory budget in bytes (dnx.Options.MaxMemory).
	MaxMemory int64

	// MaxBatch is the most rows a dynamic batch holds (default 8; 1 turns batching off).
	// PreferredBatch is the size at which a batch runs without waiting out MaxQueueDelay
	// (default MaxBatch). MaxQueueDelay is how long, after the first request of a batch was
	// queued, the batch waits for requests being received to join it (default 2ms); a request
	// alone in the server runs at once (see batcher).
	MaxBatch, PreferredBatch int
	MaxQueueDelay            time.Duration
	// MaxQueue is how many requests per model may wait; more are refused with 503 (default 64).
	MaxQueue int

	// MaxRequestBytes bounds a request's body (REST) or message (gRPC) (default 64 MiB).
	MaxRequestBytes int64
	// RequestTimeout bounds each request from its first byte to its answer, and each read of a
	// request body (default 60s; negative: none).
	RequestTimeout time.Duration
	// ShutdownTimeout bounds how long a shutdown waits for requests in flight (default 30s);
	// past it, connections are closed.
	ShutdownTimeout time.Duration

	// Version is reported by the server metadata endpoints.
	Version string
	// Logger receives the server's structured logs (default: discarded).
	Logger *slog.Logger

	// Test seams, nil outside this package's tests: beforeLoad runs before the models load,
	// beforeRun before each batch runs, so that tests can hold the server in a state (loading,
	// busy) without timing anything.
	beforeLoad func()
	beforeRun  func()
}

// withDefaults returns cfg with its zero values replaced by the defaults, or an error for values
// that cannot be used.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Models) == 0 {
		return cfg, errors.New("no model to serve")
	}
	if cfg.Instances == 0 {
		cfg.Instances = 1
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 8
	}
	if cfg.PreferredBatch == 0 {
		cfg.PreferredBatch = cfg.MaxBatch
	}
	if cfg.MaxQueueDelay == 0 {
		cfg.MaxQueueDelay = 2 * time.Millisecond
	}
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = 64
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = 64 << 20
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 60 * time.Second
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case cfg.Instances < 0:
		return cfg, fmt.Errorf("instances %d: want at least 1", cfg.Instances)
	case cfg.MaxBatch < 1:
		return cfg, fmt.Errorf("max batch %d: want at least 1", cfg.MaxBatch)
	case cfg.PreferredBatch < 1 || cfg.PreferredBatch > cfg.MaxBatch:
		return cfg, fmt.Errorf("preferred batch %d: want 1..max batch (%d)", cfg.PreferredBatch, cfg.MaxBatch)
	case cfg.MaxQueueDelay < 0:
		return cfg, fmt.Errorf("max queue delay %v: want 0 or more", cfg.MaxQueueDelay)
	case cfg.MaxQueue < 1:
		return cfg, fmt.Errorf("max queue %d: want at least 1", cfg.MaxQueue)
	case cfg.MaxRequestBytes < 1:
		return cfg, fmt.Errorf("max request bytes %d: want at least 1", cfg.MaxRequestBytes)
	}
	return cfg, nil
}

// Listeners are where a Server answers; a nil listener is not served.
type Listeners struct {
	HTTP, GRPC, Metrics net.Listener
}

// Server is an Open Inference Protocol server for a fixed set of models.
type Server struct {
	cfg     Config
	repo    *repository
	metrics *metrics
	// ready is true once every model is loaded, until shutdown starts.
	ready atomic.Bool
}

// New checks cfg and returns a server for its models. Nothing is loaded or listened on until
// Serve.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	repo, err := newRepository(cfg.Models)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	return &Server{cfg: cfg, repo: repo, metrics: newMetrics()}, nil
}

// Ready reports whether every model is loaded and the server is not shutting down.
func (s *Server) Ready() bool { return s.ready.Load() }

// Handler returns the REST API (/v2/...) as an http.Handler.
func (s *Server) Handler() http.Handler { return s.restHandler() }

// MetricsHandler returns the Prometheus metrics endpoint's handler.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.handler())
	return mux
}

// Serve answers on the given listeners, loads the models (the server is live but not ready
// meanwhile), and runs until ctx is cancelled. It then shuts down gracefully: it stops accepting,
// lets requests in flight finish (up to ShutdownTimeout), stops the models and returns nil. A
// model that fails to load, or a listener that fails, ends Serve with that error. Serve closes
// the listeners.
func (s *Server) Serve(ctx context.Context, l Listeners) error {
	log := s.cfg.Logger
	errc := make(chan error, 3)
	var httpSrv, metricsSrv *http.Server
	var grpcSrv *grpc.Server
	var wg sync.WaitGroup
	serveHTTP := func(srv *http.Server, ln net.Listener, what string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.Info("listening", "protocol", what, "addr", ln.Addr().String())
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s on %s: %w", what, ln.Addr(), err)
			}
		}()
	}
	if l.HTTP != nil {
		httpSrv = s.httpServer(s.restHandler())
		serveHTTP(httpSrv, l.HTTP, "http")
	}
	if l.Metrics != nil {
		metricsSrv = s.httpServer(s.MetricsHandler())
		serveHTTP(metricsSrv, l.Metrics, "metrics")
	}
	if l.GRPC != nil {
		grpcSrv = s.grpcServer()
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.Info("listening", "protocol", "grpc", "addr", l.GRPC.Addr().String())
			if err := grpcSrv.Serve(l.GRPC); err != nil {
				errc <- fmt.Errorf("serve grpc on %s: %w", l.GRPC.Addr(), err)
			}
		}()
	}

	loaded := make(chan error, 1)
	go func() {
		if s.cfg.beforeLoad != nil {
			s.cfg.beforeLoad()
		}
		loaded <- s.repo.loadAll(ctx, &s.cfg, s.metrics)
	}()
	var err error
	select {
	case err = <-loaded:
		if err == nil {
			s.ready.Store(true)
			log.Info("ready", "models", len(s.repo.all()))
			select {
			case <-ctx.Done():
			case err = <-errc:
			}
		}
	case err = <-errc:
		<-loaded // loading watches ctx only; let it finish before closing what it made
	}
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		err = nil
		log.Info("shutting down", "cause", context.Cause(ctx).Error())
	}

	// Graceful shutdown: not ready, stop accepting, finish what is in flight, then stop the
	// models (whose queues are empty by then).
	s.ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var swg sync.WaitGroup
	for _, srv := range []*http.Server{httpSrv, metricsSrv} {
		if srv == nil {
			continue
		}
		swg.Add(1)
		go func() {
			defer swg.Done()
			if e := srv.Shutdown(sctx); e != nil {
				log.Warn("shutdown: closing connections still busy", "error", e.Error())
				srv.Close()
			}
		}()
	}
	if grpcSrv != nil {
		swg.Add(1)
		go func() {
			defer swg.Done()
			done := make(chan struct{})
			go func() { grpcSrv.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-sctx.Done():
				grpcSrv.Stop()
			}
		}()
	}
	swg.Wait()
	wg.Wait()
	s.repo.closeAll()
	log.Info("stopped")
	return err
}

// httpServer returns an http.Server for h with the timeouts that keep slow or idle clients from
// holding connections forever.
func (s *Server) httpServer(h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	if s.cfg.RequestTimeout > 0 {
		// A client that sends its body slower than this is cut off; the handler sees a read error.
		srv.ReadTimeout = s.cfg.RequestTimeout
	}
	return srv
}

// grpcServer returns the gRPC server with the inference service registered.
func (s *Server) grpcServer() *grpc.Server {
	limit := int(min(s.cfg.MaxRequestBytes, 1<<31-1))
	// A pool of stream workers, rather than a new goroutine per call: a call runs the model on
	// its goroutine, whose stack then grows (copied, several times) on every call when the
	// goroutine is new, and stays grown in a worker. Calls past the pool still get goroutines of
	// their own.
	workers := uint32(max(runtime.GOMAXPROCS(0), s.cfg.Instances))
	g := grpc.NewServer(grpc.MaxRecvMsgSize(limit), grpc.MaxSendMsgSize(1<<31-1), grpc.NumStreamWorkers(workers))
	inferencepb.RegisterGRPCInferenceServiceServer(g, &grpcService{s: s})
	return g
}

// requestContext bounds a request's context by RequestTimeout.
func (s *Server) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.cfg.RequestTimeout > 0 {
		return context.WithTimeout(ctx, s.cfg.RequestTimeout)
	}
	return context.WithCancel(ctx)
}

// serverExtensions returns the protocol extensions the server metadata lists.
func serverExtensions() []string { return []string{"binary_tensor_data"} }
