package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// headerLength is Triton's binary tensor data extension header: the length of the JSON part of
// a body whose binary tensor sections follow it.
const headerLength = "Inference-Header-Content-Length"

// restHandler routes the protocol's REST API.
func (s *Server) restHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/health/live", s.live)
	mux.HandleFunc("GET /v2/health/ready", s.readyz)
	mux.HandleFunc("GET /v2", s.serverMetadata)
	mux.HandleFunc("GET /v2/{$}", s.serverMetadata)
	for _, prefix := range []string{"/v2/models/{name}", "/v2/models/{name}/versions/{version}"} {
		mux.HandleFunc("GET "+prefix, s.modelMetadata)
		mux.HandleFunc("GET "+prefix+"/ready", s.modelReady)
		mux.HandleFunc("POST "+prefix+"/infer", s.inferREST)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, "no endpoint %s %s (see the Open Inference Protocol's REST API under /v2)", r.Method, r.URL.Path))
	})
	return s.logRequests(mux)
}

// statusRecorder remembers the status a handler wrote, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// logRequests logs each request: failures at Info (with the error sent), successes at Debug, so
// that a production log shows what went wrong without one line per inference.
func (s *Server) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		level := slog.LevelDebug
		if rec.status >= 400 {
			level = slog.LevelInfo
		}
		if !s.cfg.Logger.Enabled(r.Context(), level) {
			return // before boxing the attributes, five allocations a request
		}
		s.cfg.Logger.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "remote", r.RemoteAddr, "duration_us", time.Since(start).Microseconds())
	})
}

func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"live": true})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	code := http.StatusOK
	if !s.Ready() {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]bool{"ready": s.Ready()})
}

func (s *Server) serverMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"name": "dnx", "version": s.cfg.Version, "extensions": serverExtensions()})
}

// tensorMetadata is one input or output in model metadata.
type tensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// platform is what model metadata reports as the model's platform.
const platform = "onnx"

func (s *Server) modelMetadata(w http.ResponseWriter, r *http.Request) {
	m, err := s.repo.lookupReady(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		writeError(w, err)
		return
	}
	var versions []string
	for _, v := range s.repo.models[m.name].versions {
		versions = append(versions, v.version)
	}
	ins, outs := make([]tensorMetadata, len(m.inputs)), make([]tensorMetadata, len(m.outputs))
	for i, v := range m.inputs {
		ins[i] = tensorMetadata{v.Name, datatypeName(v.DType), metadataShape(v)}
	}
	for i, v := range m.outputs {
		outs[i] = tensorMetadata{v.Name, datatypeName(v.DType), metadataShape(v)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": m.name, "versions": versions, "platform": platform,
		"inputs": ins, "outputs": outs})
}

func (s *Server) modelReady(w http.ResponseWriter, r *http.Request) {
	m, err := s.repo.lookup(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		writeError(w, err)
		return
	}
	ready := m.ready.Load() && s.Ready()
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"name": m.name, "version": m.version, "ready": ready})
}

// inferREST answers POST .../infer: reads the body (bounded by MaxRequestBytes), decodes the
// JSON request and its binary sections, runs it and writes the response.
func (s *Server) inferREST(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := s.requestContext(r.Context())
	defer cancel()
	m, err := s.repo.lookupReady(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		writeError(w, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.metrics.request(m, 0, time.Since(start), timing{}, err)
		writeError(w, err)
		return
	}
	req, err := parseRESTRequest(body, r.Header.Get(headerLength))
	if err != nil {
		s.metrics.request(m, 0, time.Since(start), timing{}, err)
		writeError(w, err)
		return
	}
	res, err := s.infer(ctx, m, req.infer, start)
	if err != nil {
		writeError(w, err)
		return
	}
	out, jsonLen, err := encodeRESTResponse(m, req, res)
	if err != nil {
		writeError(w, err)
		return
	}
	h := w.Header()
	if jsonLen < len(out) {
		h.Set("Content-Type", "application/octet-stream")
		h.Set(headerLength, strconv.Itoa(jsonLen))
	} else {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out) // a client that went away is not an error of ours
}

// readBody reads the whole request body, refusing more than MaxRequestBytes with 413 (before
// reading anything when Content-Length already says so).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := s.cfg.MaxRequestBytes
	if r.ContentLength > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "request body: %d bytes, more than the limit of %d (--max-request-bytes)", r.ContentLength, limit)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	var buf []byte
	var err error
	if r.ContentLength > 0 {
		buf = make([]byte, r.ContentLength)
		_, err = io.ReadFull(body, buf)
	} else {
		buf, err = io.ReadAll(body)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "request body: more than the limit of %d bytes (--max-request-bytes)", limit)
		}
		return nil, badRequest("request body: %v", err)
	}
	return buf, nil
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, fmt.Appendf(nil, `{"error":%q}`, err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// writeError writes err as the protocol's {"error": "..."} with its status.
func writeError(w http.ResponseWriter, err error) {
	ae := asAPIError(err)
	writeJSON(w, ae.status, map[string]string{"error": ae.msg})
}
