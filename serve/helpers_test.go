package serve

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dnx-ml/dnx"
	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/serve/inferencepb"
)

// tinyModel returns the path of the shared densenet_tiny model (input "input" float32
// [batch,3,16,16], output "logits" float32 [batch,5]), skipping the test when the shared data
// is absent.
func tinyModel(t testing.TB) string {
	t.Helper()
	return testenv.Shared(t, "models/densenet_tiny/model.onnx")
}

const tinyRow = 3 * 16 * 16 // elements per row of the tiny model's input

// testServer is a Server running on loopback listeners for one test.
type testServer struct {
	srv     *Server
	base    string // http://127.0.0.1:PORT
	metrics string // http://127.0.0.1:PORT/metrics
	grpc    string // 127.0.0.1:PORT
	cancel  context.CancelFunc
	done    chan error
}

// startServer starts a server for cfg on port 0 and, unless wait is false, waits until it is
// ready. It is stopped when the test ends.
func startServer(t *testing.T, cfg Config, wait bool) *testServer {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	ls := Listeners{HTTP: listen(), GRPC: listen(), Metrics: listen()}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{srv: srv, base: "http://" + ls.HTTP.Addr().String(),
		metrics: "http://" + ls.Metrics.Addr().String() + "/metrics",
		grpc:    ls.GRPC.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx, ls) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ts.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	if wait {
		waitFor(t, "server ready", srv.Ready)
	}
	return ts
}

// waitFor polls cond until it holds. The deadline only keeps a broken test from hanging: no
// test asserts how long anything takes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testInput returns rows rows of deterministic pseudo-random input for the tiny model.
func testInput(rows, seed int) []float32 {
	out := make([]float32, rows*tinyRow)
	x := uint32(seed*7919 + 1)
	for i := range out {
		x = x*1664525 + 1013904223
		out[i] = float32(int32(x>>8)%2000)/1000 - 1
	}
	return out
}

// directRun runs the model at path on data with a plain Session, the reference every protocol
// must match exactly.
func directRun(t *testing.T, path string, rows int, data []float32) []float32 {
	t.Helper()
	m, err := dnx.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dnx.NewSession(m, dnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, err := dnx.NewTensor([]int{rows, 3, 16, 16}, data)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(context.Background(), map[string]*dnx.Tensor{"input": in})
	if err != nil {
		t.Fatal(err)
	}
	f, err := out["logits"].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// maxAbsDiff compares two float32 slices; +Inf when their lengths differ.
func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

func float32Bytes(f []float32) []byte {
	b := make([]byte, 0, 4*len(f))
	for _, x := range f {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func bytesFloat32(b []byte) []float32 {
	f := make([]float32, len(b)/4)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return f
}

// jsonInfer builds a JSON infer request body for the tiny model.
func jsonInfer(rows int, data []float32) []byte {
	b, _ := json.Marshal(map[string]any{"id": "req-1", "inputs": []any{map[string]any{
		"name": "input", "shape": []int{rows, 3, 16, 16}, "datatype": "FP32", "data": data}}})
	return b
}

// binaryInfer builds a binary-extension infer request; it returns the body and the value of
// the Inference-Header-Content-Length header.
func binaryInfer(rows int, data []float32, binaryOut bool) ([]byte, string) {
	js, _ := json.Marshal(map[string]any{
		"parameters": map[string]any{"binary_data_output": binaryOut},
		"inputs": []any{map[string]any{"name": "input", "shape": []int{rows, 3, 16, 16}, "datatype": "FP32",
			"parameters": map[string]any{"binary_data_size": 4 * len(data)}}}})
	return append(js, float32Bytes(data)...), strconv.Itoa(len(js))
}

// post sends body to url with the optional binary header and returns the status, headers and
// body.
func post(t *testing.T, url string, body []byte, headerLen string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if headerLen != "" {
		req.Header.Set(headerLength, headerLen)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// restLogits decodes the logits of a REST response, JSON or binary.
func restLogits(t *testing.T, h http.Header, body []byte) []float32 {
	t.Helper()
	js, bin := body, []byte(nil)
	if hl := h.Get(headerLength); hl != "" {
		n, err := strconv.Atoi(hl)
		if err != nil || n > len(body) {
			t.Fatalf("bad %s %q for a body of %d bytes", headerLength, hl, len(body))
		}
		js, bin = body[:n], body[n:]
	}
	var resp struct {
		ID      string `json:"id"`
		Outputs []struct {
			Name       string         `json:"name"`
			Datatype   string         `json:"datatype"`
			Shape      []int          `json:"shape"`
			Parameters map[string]any `json:"parameters"`
			Data       []float32      `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(js, &resp); err != nil {
		t.Fatalf("response %s: %v", js, err)
	}
	if len(resp.Outputs) != 1 || resp.Outputs[0].Name != "logits" || resp.Outputs[0].Datatype != "FP32" {
		t.Fatalf("response outputs: %s", js)
	}
	if bin != nil {
		return bytesFloat32(bin)
	}
	return resp.Outputs[0].Data
}

// grpcClient dials the server's gRPC listener with a client generated from the protocol's
// .proto, as a user's would be.
func grpcClient(t *testing.T, addr string) inferencepb.GRPCInferenceServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return inferencepb.NewGRPCInferenceServiceClient(conn)
}

// grpcInfer builds a raw-contents ModelInferRequest for the tiny model.
func grpcInfer(model string, rows int, data []float32) *inferencepb.ModelInferRequest {
	return &inferencepb.ModelInferRequest{
		ModelName: model, Id: "g-1",
		Inputs:           []*inferencepb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32", Shape: []int64{int64(rows), 3, 16, 16}}},
		RawInputContents: [][]byte{float32Bytes(data)},
	}
}

// scrape returns the metrics text.
func scrape(t *testing.T, url string) string {
	t.Helper()
	code, b := get(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, b)
	}
	return string(b)
}

// metricValue returns the value of the sample `name{model="M",version="V"}` in a scrape, or -1.
func metricValue(text, name, model, version string) float64 {
	prefix := fmt.Sprintf("%s{model=%q,version=%q} ", name, model, version)
	for _, line := range bytes.Split([]byte(text), []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(prefix)); ok {
			f, err := strconv.ParseFloat(string(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// gate blocks the server's batches (Config.beforeRun) until released, and says when a batch
// has reached it.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (g *gate) hook() {
	g.entered <- struct{}{}
	<-g.release
}
