package serve

import (
	"bytes"
	"context"
	"github.com/dnx-ml/dnx"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkRESTBinaryTiny measures the server's own work per REST request with binary tensors
// (decoding, checks, the run, encoding, metrics), in process and without a network, on the tiny
// DenseNet at batch 1 with batching off; BenchmarkSessionRunTiny is the model's own time.
func BenchmarkRESTBinaryTiny(b *testing.B) {
	path := tinyModel(b)
	srv, err := New(Config{Models: []ModelSpec{{Name: "tiny", Path: path}}, MaxBatch: 1, Instances: 1, Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.repo.loadAll(context.Background(), &srv.cfg, srv.metrics); err != nil {
		b.Fatal(err)
	}
	srv.ready.Store(true)
	h := srv.Handler()
	body, hl := binaryInfer(1, testInput(1, 1), true)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v2/models/tiny/infer", bytes.NewReader(body))
		req.Header.Set(headerLength, hl)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
		}
	}
}

// BenchmarkSessionRunTiny is the model's own time for BenchmarkRESTBinaryTiny's request: the
// difference between the two is the server's overhead.
func BenchmarkSessionRunTiny(b *testing.B) {
	path := tinyModel(b)
	model, err := dnx.LoadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	sess, err := dnx.NewSession(model, dnx.Options{Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	name := model.Inputs()[0].Name
	x, err := dnx.NewTensor([]int{1, 3, 16, 16}, testInput(1, 1))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sess.Run(context.Background(), map[string]*dnx.Tensor{name: x}); err != nil {
			b.Fatal(err)
		}
	}
}
