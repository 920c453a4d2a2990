package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/dnx-ml/dnx"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dnx-ml/dnx/serve/inferencepb"
)

// TestInferMatchesSessionRun checks that REST JSON, REST binary (binary or JSON outputs), and
// gRPC (raw and typed contents) all return exactly what a direct Session.Run returns: max abs
// diff 0.
func TestInferMatchesSessionRun(t *testing.T) {
	path := tinyModel(t)
	ts := startServer(t, Config{Models: []ModelSpec{{Name: "tiny", Path: path}}, MaxBatch: 1}, true)
	client := grpcClient(t, ts.grpc)
	url := ts.base + "/v2/models/tiny/infer"
	protocols := []struct {
		name string
		run  func(t *testing.T, rows int, data []float32) []float32
	}{
		{"rest json", func(t *testing.T, rows int, data []float32) []float32 {
			code, h, b := post(t, url, jsonInfer(rows, data), "")
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, b)
			}
			if !bytes.Contains(b, []byte(`"id":"req-1"`)) {
				t.Errorf("id not echoed: %s", b)
			}
			return restLogits(t, h, b)
		}},
		{"rest binary", func(t *testing.T, rows int, data []float32) []float32 {
			body, hl := binaryInfer(rows, data, true)
			code, h, b := post(t, url, body, hl)
			if code != http.StatusOK || h.Get(headerLength) == "" {
				t.Fatalf("status %d, %s %q: %s", code, headerLength, h.Get(headerLength), b)
			}
			return restLogits(t, h, b)
		}},
		{"rest binary in, json out", func(t *testing.T, rows int, data []float32) []float32 {
			body, hl := binaryInfer(rows, data, false)
			code, h, b := post(t, ts.base+"/v2/models/tiny/versions/1/infer", body, hl)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, b)
			}
			return restLogits(t, h, b)
		}},
		{"grpc raw", func(t *testing.T, rows int, data []float32) []float32 {
			resp, err := client.ModelInfer(context.Background(), grpcInfer("tiny", rows, data))
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetId() != "g-1" || len(resp.GetRawOutputContents()) != 1 || resp.GetOutputs()[0].GetName() != "logits" {
				t.Fatalf("response: %v", resp)
			}
			return bytesFloat32(resp.GetRawOutputContents()[0])
		}},
		{"grpc typed contents", func(t *testing.T, rows int, data []float32) []float32 {
			req := grpcInfer("tiny", rows, data)
			req.RawInputContents = nil
			req.Inputs[0].Contents = &inferencepb.InferTensorContents{Fp32Contents: data}
			req.Outputs = []*inferencepb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits"}}
			resp, err := client.ModelInfer(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			return bytesFloat32(resp.GetRawOutputContents()[0])
		}},
	}
	for _, rows := range []int{1, 3} {
		data := testInput(rows, rows)
		want := directRun(t, path, rows, data)
		for _, p := range protocols {
			t.Run(fmt.Sprintf("%s/batch%d", p.name, rows), func(t *testing.T) {
				got := p.run(t, rows, data)
				if d := maxAbsDiff(got, want); d != 0 {
					t.Errorf("max abs diff %g against Session.Run (got %v, want %v)", d, got, want)
				}
			})
		}
	}
}

// TestRESTBadInput sends each kind of bad request and checks the status and that the error
// names the field at fault; the server must keep answering good requests afterwards.
func TestRESTBadInput(t *testing.T) {
	path := tinyModel(t)
	ts := startServer(t, Config{Models: []ModelSpec{{Name: "tiny", Path: path}}, MaxRequestBytes: 64 << 10}, true)
	url := ts.base + "/v2/models/tiny/infer"
	good := testInput(1, 1)
	goodBin, goodHL := binaryInfer(1, good, true)
	in := func(fields string) []byte {
		return []byte(`{"inputs":[{"name":"input",` + fields + `}]}`)
	}
	data := func(n int) string {
		return strings.TrimSuffix(strings.Repeat("0.5,", n), ",")
	}
	cases := []struct {
		name      string
		url       string
		body      []byte
		headerLen string
		status    int
		want      string
	}{
		{"malformed json", url, []byte(`{"inputs":[{"name":"input",`), "", 400, "malformed JSON"},
		{"json is not an object", url, []byte(`[1,2,3]`), "", 400, "malformed JSON"},
		{"shape not numbers", url, in(`"shape":["a"],"datatype":"FP32","data":[1]`), "", 400, "inputs.shape"},
		{"no inputs", url, []byte(`{"inputs":[]}`), "", 400, "inputs"},
		{"wrong datatype", url, in(`"shape":[1,3,16,16],"datatype":"INT64","data":[` + data(tinyRow) + `]`), "", 400, `inputs[0] "input": datatype INT64, the model takes FP32`},
		{"unknown datatype", url, in(`"shape":[1,3,16,16],"datatype":"FLOAT","data":[1]`), "", 400, `inputs[0] "input": datatype "FLOAT"`},
		{"wrong rank", url, in(`"shape":[3,16,16],"datatype":"FP32","data":[` + data(tinyRow) + `]`), "", 400, `inputs[0] "input": shape [3 16 16] has rank 3`},
		{"wrong fixed dim", url, in(`"shape":[1,3,16,15],"datatype":"FP32","data":[` + data(3*16*15) + `]`), "", 400, `inputs[0] "input": shape [1 3 16 15]: dim 3 is 15`},
		{"zero batch", url, in(`"shape":[0,3,16,16],"datatype":"FP32","data":[]`), "", 400, "dim 0 (batch) must be at least 1"},
		{"too few elements", url, in(`"shape":[1,3,16,16],"datatype":"FP32","data":[1,2,3]`), "", 400, `inputs[0] "input": data: holds 3 elements, the shape needs 768`},
		{"too many elements", url, in(`"shape":[1,3,16,16],"datatype":"FP32","data":[` + data(tinyRow+1) + `]`), "", 400, "more than the shape's 768"},
		{"not a number", url, in(`"shape":[1,3,16,16],"datatype":"FP32","data":["x"]`), "", 400, "element 0 is not a number"},
		{"boolean for FP32", url, in(`"shape":[1,3,16,16],"datatype":"FP32","data":[true]`), "", 400, `element 0: "true" is not a valid FP32`},
		{"no data", url, in(`"shape":[1,3,16,16],"datatype":"FP32"`), "", 400, `inputs[0] "input": no data`},
		{"unknown input", url, []byte(`{"inputs":[{"name":"image","shape":[1],"datatype":"FP32","data":[1]}]}`), "", 400, `inputs[0]: model "tiny" has no input "image"`},
		{"input twice", url, []byte(`{"inputs":[{"name":"input","shape":[1,3,16,16],"datatype":"FP32","data":[` + data(tinyRow) + `]},{"name":"input","shape":[1,3,16,16],"datatype":"FP32","data":[` + data(tinyRow) + `]}]}`), "", 400, `inputs[1] "input": input given twice`},
		{"unknown output", url, []byte(`{"inputs":[{"name":"input","shape":[1,3,16,16],"datatype":"FP32","data":[` + data(tinyRow) + `]}],"outputs":[{"name":"probs"}]}`), "", 400, `outputs[0]: model "tiny" has no output "probs"`},
		{"unknown model", ts.base + "/v2/models/resnet/infer", jsonInfer(1, good), "", 404, `unknown model "resnet"`},
		{"unknown version", ts.base + "/v2/models/tiny/versions/7/infer", jsonInfer(1, good), "", 404, `model "tiny" has no version "7"`},
		{"unknown endpoint", ts.base + "/v2/modelz", nil, "", 404, "no endpoint"},
		{"oversize body", url, jsonInfer(100, testInput(100, 1)), "", 413, "--max-request-bytes"},
		{"truncated binary section", url, goodBin[:len(goodBin)-10], goodHL, 400, `inputs[0] "input": binary_data_size 3072, but only 3062 bytes of binary data remain (truncated body)`},
		{"extra binary bytes", url, append(append([]byte{}, goodBin...), 1, 2, 3, 4), goodHL, 400, "binary data: the body holds 3076 bytes"},
		{"header length past body", url, goodBin, "999999", 400, "Inference-Header-Content-Length: 999999, but the body has only"},
		{"header length not a number", url, goodBin, "abc", 400, "is not a length"},
		{"binary size vs shape", url, func() []byte {
			b, hl := binaryInfer(1, good[:10], true)
			_ = hl
			return bytes.Replace(b, []byte(`"shape":[1,3,16,16]`), []byte(`"shape":[1,3,16,16]`), 1)
		}(), func() string { _, hl := binaryInfer(1, good[:10], true); return hl }(), 400, "binary_data_size 40, but FP32 [1 3 16 16] takes 3072 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, b := post(t, c.url, c.body, c.headerLen)
			if code != c.status {
				t.Fatalf("status %d, want %d: %s", code, c.status, b)
			}
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
				t.Fatalf("body %s is not {\"error\": ...}", b)
			}
			if !strings.Contains(e.Error, c.want) {
				t.Errorf("error %q does not say %q", e.Error, c.want)
			}
		})
	}
	// The server still serves.
	if code, _, b := post(t, url, goodBin, goodHL); code != 200 {
		t.Fatalf("good request after the bad ones: %d %s", code, b)
	}
}

// TestGRPCBadInput checks the gRPC status codes and messages for bad requests.
func TestGRPCBadInput(t *testing.T) {
	path := tinyModel(t)
	ts := startServer(t, Config{Models: []ModelSpec{{Name: "tiny", Path: path}}, MaxRequestBytes: 64 << 10}, true)
	client := grpcClient(t, ts.grpc)
	good := testInput(1, 2)
	cases := []struct {
		name string
		edit func(r *inferencepb.ModelInferRequest)
		code codes.Code
		want string
	}{
		{"unknown model", func(r *inferencepb.ModelInferRequest) { r.ModelName = "resnet" }, codes.NotFound, `unknown model "resnet"`},
		{"unknown version", func(r *inferencepb.ModelInferRequest) { r.ModelVersion = "3" }, codes.NotFound, `no version "3"`},
		{"wrong datatype", func(r *inferencepb.ModelInferRequest) { r.Inputs[0].Datatype = "FP16" }, codes.InvalidArgument, `inputs[0] "input": datatype FP16, the model takes FP32`},
		{"wrong shape", func(r *inferencepb.ModelInferRequest) { r.Inputs[0].Shape = []int64{1, 3, 8, 32} }, codes.InvalidArgument, "dim 2 is 8"},
		{"raw size", func(r *inferencepb.ModelInferRequest) { r.RawInputContents[0] = r.RawInputContents[0][:100] }, codes.InvalidArgument, "raw_input_contents[0] holds 100 bytes"},
		{"raw count", func(r *inferencepb.ModelInferRequest) { r.RawInputContents = append(r.RawInputContents, nil) }, codes.InvalidArgument, "raw_input_contents: 2 entries for 1 inputs"},
		{"typed count", func(r *inferencepb.ModelInferRequest) {
			r.RawInputContents = nil
			r.Inputs[0].Contents = &inferencepb.InferTensorContents{Fp32Contents: []float32{1}}
		}, codes.InvalidArgument, "contents.fp32_contents holds 1 elements"},
		{"unknown output", func(r *inferencepb.ModelInferRequest) {
			r.Outputs = []*inferencepb.ModelInferRequest_InferRequestedOutputTensor{{Name: "x"}}
		}, codes.InvalidArgument, `outputs[0]: model "tiny" has no output "x"`},
		{"oversize message", func(r *inferencepb.ModelInferRequest) {
			r.Inputs[0].Shape[0] = 100
			r.RawInputContents[0] = float32Bytes(testInput(100, 1))
		}, codes.ResourceExhausted, "larger than max"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := grpcInfer("tiny", 1, good)
			c.edit(req)
			_, err := client.ModelInfer(context.Background(), req)
			st, _ := status.FromError(err)
			if st.Code() != c.code || !strings.Contains(st.Message(), c.want) {
				t.Errorf("got %v %q, want %v containing %q", st.Code(), st.Message(), c.code, c.want)
			}
		})
	}
	if _, err := client.ModelInfer(context.Background(), grpcInfer("tiny", 1, good)); err != nil {
		t.Fatalf("good request after the bad ones: %v", err)
	}
}

// TestHealthAndMetadata checks the REST and gRPC health and metadata endpoints on a Triton
// model repository with two versions.
func TestHealthAndMetadata(t *testing.T) {
	path := tinyModel(t)
	dir := t.TempDir()
	model, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1", "2"} {
		if err := os.MkdirAll(filepath.Join(dir, "tiny", v), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tiny", v, "model.onnx"), model, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "tiny", "notes"), 0o755) // not a version: skipped
	specs, err := ScanRepository(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("ScanRepository: %v", specs)
	}
	ts := startServer(t, Config{Models: specs, Version: "9.9"}, true)
	cases := []struct {
		path   string
		status int
		want   string
	}{
		{"/v2/health/live", 200, `"live":true`},
		{"/v2/health/ready", 200, `"ready":true`},
		{"/v2", 200, `"extensions":["binary_tensor_data"],"name":"dnx","version":"9.9"`},
		{"/v2/models/tiny", 200, `"inputs":[{"name":"input","datatype":"FP32","shape":[-1,3,16,16]}],"name":"tiny","outputs":[{"name":"logits","datatype":"FP32","shape":[-1,5]}],"platform":"onnx","versions":["1","2"]`},
		{"/v2/models/tiny/versions/1", 200, `"name":"tiny"`},
		{"/v2/models/tiny/ready", 200, `"name":"tiny","ready":true,"version":"2"`},
		{"/v2/models/tiny/versions/1/ready", 200, `"ready":true,"version":"1"`},
		{"/v2/models/tiny/versions/3/ready", 404, `has no version`},
		{"/v2/models/other", 404, `unknown model`},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			code, b := get(t, ts.base+c.path)
			if code != c.status || !strings.Contains(string(b), c.want) {
				t.Errorf("GET %s: %d %s, want %d containing %s", c.path, code, b, c.status, c.want)
			}
		})
	}
	client := grpcClient(t, ts.grpc)
	ctx := context.Background()
	if r, err := client.ServerLive(ctx, &inferencepb.ServerLiveRequest{}); err != nil || !r.GetLive() {
		t.Errorf("ServerLive: %v %v", r, err)
	}
	if r, err := client.ServerReady(ctx, &inferencepb.ServerReadyRequest{}); err != nil || !r.GetReady() {
		t.Errorf("ServerReady: %v %v", r, err)
	}
	if r, err := client.ModelReady(ctx, &inferencepb.ModelReadyRequest{Name: "tiny", Version: "1"}); err != nil || !r.GetReady() {
		t.Errorf("ModelReady: %v %v", r, err)
	}
	if _, err := client.ModelReady(ctx, &inferencepb.ModelReadyRequest{Name: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("ModelReady of an unknown model: %v", err)
	}
	if r, err := client.ServerMetadata(ctx, &inferencepb.ServerMetadataRequest{}); err != nil || r.GetName() != "dnx" || r.GetVersion() != "9.9" {
		t.Errorf("ServerMetadata: %v %v", r, err)
	}
	r, err := client.ModelMetadata(ctx, &inferencepb.ModelMetadataRequest{Name: "tiny"})
	if err != nil || len(r.GetInputs()) != 1 || r.GetInputs()[0].GetDatatype() != "FP32" ||
		fmt.Sprint(r.GetInputs()[0].GetShape()) != "[-1 3 16 16]" || fmt.Sprint(r.GetVersions()) != "[1 2]" {
		t.Errorf("ModelMetadata: %v %v", r, err)
	}
	// Inference on each version.
	for _, v := range []string{"1", "2"} {
		req := grpcInfer("tiny", 1, testInput(1, 5))
		req.ModelVersion = v
		resp, err := client.ModelInfer(ctx, req)
		if err != nil || resp.GetModelVersion() != v {
			t.Errorf("ModelInfer version %s: %v %v", v, resp.GetModelVersion(), err)
		}
	}
}

// TestNotReadyUntilLoaded holds model loading and checks that the server is live but not ready,
// and refuses inference with 503, until the models are loaded.
func TestNotReadyUntilLoaded(t *testing.T) {
	path := tinyModel(t)
	release := make(chan struct{})
	started := make(chan struct{})
	cfg := Config{Models: []ModelSpec{{Name: "tiny", Path: path}}}
	cfg.beforeLoad = func() { close(started); <-release }
	ts := startServer(t, cfg, false)
	<-started
	client := grpcClient(t, ts.grpc)
	cases := []struct {
		method, path string
		status       int
	}{
		{"GET", "/v2/health/live", 200},
		{"GET", "/v2/health/ready", 503},
		{"GET", "/v2/models/tiny/ready", 503},
		{"GET", "/v2/models/tiny", 503},
		{"POST", "/v2/models/tiny/infer", 503},
	}
	for _, c := range cases {
		var code int
		var b []byte
		if c.method == "GET" {
			code, b = get(t, ts.base+c.path)
		} else {
			code, _, b = post(t, ts.base+c.path, jsonInfer(1, testInput(1, 1)), "")
		}
		if code != c.status {
			t.Errorf("%s %s while loading: %d %s, want %d", c.method, c.path, code, b, c.status)
		}
	}
	if r, err := client.ServerReady(context.Background(), &inferencepb.ServerReadyRequest{}); err != nil || r.GetReady() {
		t.Errorf("ServerReady while loading: %v %v", r, err)
	}
	if _, err := client.ModelInfer(context.Background(), grpcInfer("tiny", 1, testInput(1, 1))); status.Code(err) != codes.Unavailable {
		t.Errorf("ModelInfer while loading: %v, want Unavailable", err)
	}
	close(release)
	waitFor(t, "ready", ts.srv.Ready)
	if code, b := get(t, ts.base+"/v2/health/ready"); code != 200 {
		t.Errorf("ready after loading: %d %s", code, b)
	}
}

// TestSlowClientDoesNotBlockOthers keeps a request whose body trickles in open while other
// clients are served.
func TestSlowClientDoesNotBlockOthers(t *testing.T) {
	path := tinyModel(t)
	ts := startServer(t, Config{Models: []ModelSpec{{Name: "tiny", Path: path}}, Instances: 1}, true)
	conns := make([]net.Conn, 4)
	for i := range conns {
		c, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Headers and the first bytes of a body that never completes.
		fmt.Fprintf(c, "POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"inputs\":[")
		conns[i] = c
	}
	body, hl := binaryInfer(2, testInput(2, 3), true)
	for i := range 3 {
		if code, _, b := post(t, ts.base+"/v2/models/tiny/infer", body, hl); code != 200 {
			t.Fatalf("request %d beside slow clients: %d %s", i, code, b)
		}
	}
	if _, err := grpcClient(t, ts.grpc).ModelInfer(context.Background(), grpcInfer("tiny", 1, testInput(1, 1))); err != nil {
		t.Fatalf("gRPC beside slow clients: %v", err)
	}
}

// TestQueueFull fills a model's queue while its only instance is busy: the next request is
// refused at once with 503 (gRPC: Unavailable), and the queued ones still succeed.
func TestQueueFull(t *testing.T) {
	path := tinyModel(t)
	g := newGate()
	cfg := Config{Models: []ModelSpec{{Name: "tiny", Path: path}}, MaxBatch: 1, MaxQueue: 1, Instances: 1}
	cfg.beforeRun = g.hook
	ts := startServer(t, cfg, true)
	url := ts.base + "/v2/models/tiny/infer"
	body, hl := binaryInfer(1, testInput(1, 1), true)
	var wg sync.WaitGroup
	codes2 := make([]int, 2)
	wg.Add(1)
	go func() { defer wg.Done(); codes2[0], _, _ = post(t, url, body, hl) }()
	<-g.entered // the instance is busy with the first request
	m, _ := ts.srv.repo.lookup("tiny", "")
	wg.Add(1)
	go func() { defer wg.Done(); codes2[1], _, _ = post(t, url, body, hl) }()
	waitFor(t, "second request queued", func() bool { return m.batch.queuedRequests() == 1 })

	code, _, b := post(t, url, body, hl)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(b), "queue full") {
		t.Errorf("request to a full queue: %d %s, want 503 queue full", code, b)
	}
	_, err := grpcClient(t, ts.grpc).ModelInfer(context.Background(), grpcInfer("tiny", 1, testInput(1, 1)))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC request to a full queue: %v, want Unavailable", err)
	}
	close(g.release)
	wg.Wait()
	if codes2[0] != 200 || codes2[1] != 200 {
		t.Errorf("queued requests: %v, want 200 200", codes2)
	}
}

// TestClientDisconnectCancels checks that a request whose client goes away while it waits is
// dropped, not run.
func TestClientDisconnectCancels(t *testing.T) {
	path := tinyModel(t)
	g := newGate()
	cfg := Config{Models: []ModelSpec{{Name: "tiny", Path: path}}, MaxBatch: 1, Instances: 1}
	cfg.beforeRun = g.hook
	ts := startServer(t, cfg, true)
	url := ts.base + "/v2/models/tiny/infer"
	body, hl := binaryInfer(1, testInput(1, 1), true)
	done := make(chan int)
	go func() { code, _, _ := post(t, url, body, hl); done <- code }()
	<-g.entered

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set(headerLength, hl)
	errc := make(chan error)
	go func() {
		_, err := http.DefaultClient.Do(req)
		errc <- err
	}()
	m, _ := ts.srv.repo.lookup("tiny", "")
	waitFor(t, "second request queued", func() bool { return m.batch.queuedRequests() == 1 })
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("cancelled request returned no error")
	}
	waitFor(t, "the server to notice the disconnect", func() bool {
		return metricValue(scrape(t, ts.metrics), "nv_inference_request_failure", "tiny", "1") == 1
	})
	g.release <- struct{}{} // the first request runs
	if code := <-done; code != 200 {
		t.Fatalf("first request: %d", code)
	}
	// The queue is empty again (the cancelled request was dropped); a third request runs, and
	// the model ran twice in all, not three times.
	close(g.release)
	if code, _, b := post(t, url, body, hl); code != 200 {
		t.Fatalf("third request: %d %s", code, b)
	}
	if n := metricValue(scrape(t, ts.metrics), "nv_inference_exec_count", "tiny", "1"); n != 2 {
		t.Errorf("nv_inference_exec_count = %v, want 2 (the cancelled request must not run)", n)
	}
}

// TestDynamicBatching queues requests of 1 to 3 rows behind a blocked instance, in a known
// order, so that they run as one batch, and checks that each request gets exactly its rows of a
// Session.Run of that batch (the stacking and splitting add nothing), and bit-identical values
// to an unbatched run of its own input (the kernels' results for an image do not depend on the
// batch it runs in: TestBatchInvariance, cpu.TestConvBatchInvariant).
func TestDynamicBatching(t *testing.T) {
	path := tinyModel(t)
	rows := []int{1, 2, 1, 3, 1}
	const total = 8
	g := newGate()
	// A long delay, and a preferred batch of all the rows: the batch runs when its last row is
	// in, without the test timing anything.
	cfg := Config{Models: []ModelSpec{{Name: "tiny", Path: path}}, MaxBatch: total,
		PreferredBatch: total, MaxQueueDelay: time.Hour, Instances: 1}
	cfg.beforeRun = g.hook
	ts := startServer(t, cfg, true)
	client := grpcClient(t, ts.grpc)
	m, _ := ts.srv.repo.lookup("tiny", "")

	// A full-size request first: it runs alone and holds the instance at the gate.
	blocker := make(chan error, 1)
	go func() {
		_, err := client.ModelInfer(context.Background(), grpcInfer("tiny", total, testInput(total, 99)))
		blocker <- err
	}()
	<-g.entered

	var wg sync.WaitGroup
	got := make([][]float32, len(rows))
	errs := make([]error, len(rows))
	var stacked []float32
	for i, n := range rows {
		data := testInput(n, 100+i)
		stacked = append(stacked, data...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				resp, err := client.ModelInfer(context.Background(), grpcInfer("tiny", n, data))
				if err != nil {
					errs[i] = err
					return
				}
				got[i] = bytesFloat32(resp.GetRawOutputContents()[0])
				return
			}
			body, hl := binaryInfer(n, data, true)
			req, _ := http.NewRequest(http.MethodPost, ts.base+"/v2/models/tiny/infer", bytes.NewReader(body))
			req.Header.Set(headerLength, hl)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			buf.ReadFrom(resp.Body)
			if resp.StatusCode != 200 {
				errs[i] = fmt.Errorf("status %d: %s", resp.StatusCode, buf.Bytes())
				return
			}
			hlen := 0
			fmt.Sscan(resp.Header.Get(headerLength), &hlen)
			got[i] = bytesFloat32(buf.Bytes()[hlen:])
		}()
		// Queue order is arrival order: wait for this request before sending the next.
		waitFor(t, fmt.Sprintf("request %d queued", i), func() bool { return m.batch.queuedRequests() == i+1 })
	}
	close(g.release)
	wg.Wait()
	if err := <-blocker; err != nil {
		t.Fatalf("first request: %v", err)
	}
	batchOut := directRun(t, path, total, stacked)
	off := 0
	for i, n := range rows {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if d := maxAbsDiff(got[i], batchOut[off*5:(off+n)*5]); d != 0 {
			t.Errorf("request %d (%d rows): max abs diff %g against its rows of Session.Run on the batch", i, n, d)
		}
		off += n
		alone := directRun(t, path, n, testInput(n, 100+i))
		if d := maxAbsDiff(got[i], alone); d != 0 {
			t.Errorf("request %d (%d rows): max abs diff %g against an unbatched run of its input, want 0", i, n, d)
		}
	}
	text := scrape(t, ts.metrics)
	if n := metricValue(text, "nv_inference_exec_count", "tiny", "1"); n != 2 {
		t.Errorf("nv_inference_exec_count = %v, want 2 (the first request, then one batch of %d requests)", n, len(rows))
	}
	if n := metricValue(text, "nv_inference_count", "tiny", "1"); n != 2*total {
		t.Errorf("nv_inference_count = %v, want %d rows", n, 2*total)
	}
}

// TestMetrics scrapes /metrics after successful and failed requests and finds Triton's names
// with the model and version labels.
func TestMetrics(t *testing.T) {
	path := tinyModel(t)
	ts := startServer(t, Config{Models: []ModelSpec{{Name: "tiny", Path: path}}}, true)
	url := ts.base + "/v2/models/tiny/infer"
	body, hl := binaryInfer(2, testInput(2, 1), true)
	for range 3 {
		if code, _, b := post(t, url, body, hl); code != 200 {
			t.Fatalf("%d %s", code, b)
		}
	}
	post(t, url, []byte(`{`), "")
	text := scrape(t, ts.metrics)
	want := map[string]float64{
		"nv_inference_request_success":            3,
		"nv_inference_request_failure":            1,
		"nv_inference_count":                      6,
		"nv_inference_exec_count":                 3,
		"nv_inference_request_duration_us":        -2, // present, any value
		"nv_inference_queue_duration_us":          -2,
		"nv_inference_compute_input_duration_us":  -2,
		"nv_inference_compute_infer_duration_us":  -2,
		"nv_inference_compute_output_duration_us": -2,
		"nv_inference_pending_request_count":      0,
	}
	for name, v := range want {
		got := metricValue(text, name, "tiny", "1")
		if got < 0 || (v >= 0 && got != v) {
			t.Errorf("%s{model=\"tiny\",version=\"1\"} = %v, want %v", name, got, v)
		}
		if !strings.Contains(text, "# TYPE "+name+" ") {
			t.Errorf("no TYPE line for %s", name)
		}
	}
	if metricValue(text, "nv_inference_compute_infer_duration_us", "tiny", "1") <= 0 {
		t.Errorf("compute infer duration not counted")
	}
}

// TestGracefulShutdown cancels the server's context while a request is running: the server
// stops being ready and accepting, the request still completes, and Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	path := tinyModel(t)
	g := newGate()
	cfg := Config{Models: []ModelSpec{{Name: "tiny", Path: path}}, MaxBatch: 1, Instances: 2}
	cfg.beforeRun = g.hook
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, Listeners{HTTP: ln, GRPC: gln}) }()
	waitFor(t, "ready", srv.Ready)
	url := "http://" + ln.Addr().String() + "/v2/models/tiny/infer"
	body, hl := binaryInfer(1, testInput(1, 9), true)
	type reply struct {
		code int
		out  []float32
	}
	inflight := make(chan reply, 2)
	go func() {
		code, h, b := post(t, url, body, hl)
		var out []float32
		if code == 200 {
			out = restLogits(t, h, b)
		}
		inflight <- reply{code, out}
	}()
	client := grpcClient(t, gln.Addr().String())
	go func() {
		resp, err := client.ModelInfer(context.Background(), grpcInfer("tiny", 1, testInput(1, 9)))
		if err != nil {
			inflight <- reply{code: 500}
			return
		}
		inflight <- reply{200, bytesFloat32(resp.GetRawOutputContents()[0])}
	}()
	<-g.entered
	<-g.entered // both requests are running, one per instance
	cancel()
	waitFor(t, "not ready", func() bool { return !srv.Ready() })
	close(g.release)
	want := directRun(t, path, 1, testInput(1, 9))
	for range 2 {
		r := <-inflight
		if r.code != 200 || maxAbsDiff(r.out, want) != 0 {
			t.Errorf("in-flight request during shutdown: status %d, output %v", r.code, r.out)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after shutdown: %v, want nil", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Errorf("listener still accepts after shutdown")
	}
}

// TestPaddedBatches: gathered batches run at power-of-two sizes up to MaxBatch (one plan each),
// cut into groups of those sizes, else padded; the padding rows are zeros, and splitting drops
// them.
func TestPaddedBatches(t *testing.T) {
	for _, tc := range []struct{ rows, max, want int }{
		{1, 16, 1}, {2, 16, 2}, {3, 16, 4}, {5, 16, 8}, {9, 16, 16}, {12, 12, 12}, {9, 12, 12}, {5, 6, 6}, {7, 6, 7},
	} {
		if got := paddedRows(tc.rows, tc.max); got != tc.want {
			t.Errorf("paddedRows(%d, max %d) = %d, want %d", tc.rows, tc.max, got, tc.want)
		}
	}
	// Gathered batches are cut into groups of those sizes rather than padded.
	for _, tc := range []struct {
		rows []int
		max  int
		want string
	}{
		{[]int{1, 1, 1, 1, 1, 1, 1}, 8, "[4 2 1]"},
		{[]int{1, 1, 1, 1, 1, 1, 1, 1}, 8, "[8]"},
		{[]int{1, 1, 1, 1, 1}, 8, "[4 1]"},
		{[]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 16, "[8 4]"},
		{[]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 6, "[6 4]"},
		{[]int{1, 2, 1, 3, 1}, 8, "[8]"},
		{[]int{2, 3}, 8, "[2 3]"},
		{[]int{3, 3}, 8, "[3 3]"},
	} {
		batch := make([]*pending, len(tc.rows))
		for i, r := range tc.rows {
			batch[i] = &pending{rows: r}
		}
		var got []int
		for len(batch) > 0 {
			n, rows := nextGroup(batch, tc.max)
			got = append(got, rows)
			batch = batch[n:]
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("requests of %v rows, max batch %d: groups of %v rows, want %s", tc.rows, tc.max, got, tc.want)
		}
	}
	mk := func(rows int, v float32) *pending {
		data := make([]float32, rows*3)
		for i := range data {
			data[i] = v
		}
		x, err := dnx.NewTensor([]int{rows, 3}, data)
		if err != nil {
			t.Fatal(err)
		}
		return &pending{inputs: map[string]*dnx.Tensor{"x": x}, rows: rows}
	}
	batch := []*pending{mk(1, 1), mk(2, 2)}
	in, err := stack(batch, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	got, err := in["x"].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 1, 1, 2, 2, 2, 2, 2, 2, 0, 0, 0}
	if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(in["x"].Shape()) != "[4 3]" {
		t.Fatalf("stacked %v %v, want [4 3] %v", in["x"].Shape(), got, want)
	}
	parts, err := split(map[string]*dnx.Tensor{"y": in["x"]}, batch, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range batch {
		if s := parts[i]["y"].Shape(); s[0] != p.rows {
			t.Errorf("request %d got %d rows, want %d", i, s[0], p.rows)
		}
	}
}
