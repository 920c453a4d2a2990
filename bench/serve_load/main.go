// Command serve_load is a load generator for dnx serve (or any Open Inference Protocol server):
// N concurrent clients send inference requests with random inputs of the model's shape for a
// duration, over REST with binary tensors or over gRPC, and it prints the throughput, latency
// percentiles and errors. With -direct MODEL.onnx it instead times Session.Run in-process on the
// same inputs, the baseline that server overhead is measured against.
//
//	go run ./bench/serve_load -proto rest -addr 127.0.0.1:8000 -model densenet121 -c 16 -d 60s
//	go run ./bench/serve_load -proto grpc -addr 127.0.0.1:8001 -model tiny -c 1 -d 20s -json
//	go run ./bench/serve_load -direct model.onnx -c 1 -d 20s
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dnx-ml/dnx"
	"github.com/dnx-ml/dnx/serve/inferencepb"
)

type options struct {
	proto, addr, model, direct, metrics string
	clients, rows, threads              int
	duration, warmup                    time.Duration
	jsonOut                             bool
}

// report is what one run measured; -json prints it as one line.
type report struct {
	Mode        string  `json:"mode"`
	Model       string  `json:"model"`
	Clients     int     `json:"clients"`
	Rows        int     `json:"rows"`
	DurationS   float64 `json:"duration_s"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Throughput  float64 `json:"throughput_rps"`
	P50US       float64 `json:"p50_us"`
	P90US       float64 `json:"p90_us"`
	P99US       float64 `json:"p99_us"`
	MeanUS      float64 `json:"mean_us"`
	RSSStartMiB float64 `json:"rss_start_mib,omitempty"`
	RSSEndMiB   float64 `json:"rss_end_mib,omitempty"`
}

func main() {
	var o options
	flag.StringVar(&o.proto, "proto", "rest", "rest (binary tensor data) or grpc")
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8000", "server host:port (REST or gRPC, per -proto)")
	flag.StringVar(&o.model, "model", "", "model name on the server")
	flag.StringVar(&o.direct, "direct", "", "time Session.Run of this .onnx file in-process instead of a server")
	flag.StringVar(&o.metrics, "metrics", "", "server metrics URL (http://host:8002/metrics): report its RSS after warm-up and at the end")
	flag.IntVar(&o.clients, "c", 16, "concurrent clients")
	flag.IntVar(&o.rows, "rows", 1, "batch size of each request")
	flag.IntVar(&o.threads, "threads", 0, "with -direct: session threads (0: one per CPU)")
	flag.DurationVar(&o.duration, "d", 30*time.Second, "measured duration")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured warm-up first")
	flag.BoolVar(&o.jsonOut, "json", false, "print one JSON line")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "serve_load:", err)
		os.Exit(1)
	}
}

// sender sends one request and reports its error.
type sender func(ctx context.Context) error

func run(o options) error {
	if o.clients < 1 || o.rows < 1 || o.duration <= 0 {
		return fmt.Errorf("-c, -rows and -d must be positive")
	}
	var newSender func(seed uint64) (sender, error)
	var name string
	switch {
	case o.direct != "":
		s, in, err := directSetup(o)
		if err != nil {
			return err
		}
		defer s.Close()
		name = o.direct
		newSender = func(uint64) (sender, error) {
			return func(ctx context.Context) error { _, err := s.Run(ctx, in); return err }, nil
		}
	case o.model == "":
		return fmt.Errorf("-model is required (or -direct)")
	case o.proto == "rest":
		name = o.model
		newSender = func(seed uint64) (sender, error) { return restSender(o, seed) }
	case o.proto == "grpc":
		name = o.model
		conn, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		client := inferencepb.NewGRPCInferenceServiceClient(conn)
		newSender = func(seed uint64) (sender, error) { return grpcSender(o, client, seed) }
	default:
		return fmt.Errorf("-proto %q: want rest or grpc", o.proto)
	}
	senders := make([]sender, o.clients)
	for i := range senders {
		var err error
		if senders[i], err = newSender(uint64(i) + 1); err != nil {
			return err
		}
	}

	// Warm-up, then the measured run.
	measure(senders, o.warmup)
	rep := report{Mode: o.proto, Model: name, Clients: o.clients, Rows: o.rows}
	if o.direct != "" {
		rep.Mode = "direct"
	}
	if o.metrics != "" {
		rep.RSSStartMiB = rss(o.metrics)
	}
	lat, errs, first, elapsed := measure(senders, o.duration)
	if o.metrics != "" {
		rep.RSSEndMiB = rss(o.metrics)
	}
	rep.DurationS = elapsed.Seconds()
	rep.Requests, rep.Errors = len(lat), errs
	if first != nil {
		rep.FirstError = first.Error()
	}
	rep.Throughput = float64(len(lat)) / elapsed.Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
		rep.P50US, rep.P90US, rep.P99US = pct(0.5), pct(0.9), pct(0.99)
		var sum time.Duration
		for _, l := range lat {
			sum += l
		}
		rep.MeanUS = float64(sum.Microseconds()) / float64(len(lat))
	}
	if o.jsonOut {
		b, _ := json.Marshal(rep)
		fmt.Println(string(b))
		return nil
	}
	fmt.Printf("%s %s: %d clients, batch %d, %.1fs\n", rep.Mode, rep.Model, rep.Clients, rep.Rows, rep.DurationS)
	fmt.Printf("  requests %d, errors %d, throughput %.1f req/s (%.1f inferences/s)\n", rep.Requests, rep.Errors, rep.Throughput, rep.Throughput*float64(o.rows))
	fmt.Printf("  latency p50 %.0f µs, p90 %.0f µs, p99 %.0f µs, mean %.0f µs\n", rep.P50US, rep.P90US, rep.P99US, rep.MeanUS)
	if o.metrics != "" {
		fmt.Printf("  server RSS %.1f MiB after warm-up, %.1f MiB at the end\n", rep.RSSStartMiB, rep.RSSEndMiB)
	}
	if first != nil {
		fmt.Printf("  first error: %v\n", first)
	}
	return nil
}

// measure runs every sender in a loop for d and returns the successful requests' latencies,
// the error count, the first error and the elapsed time.
func measure(senders []sender, d time.Duration) ([]time.Duration, int, error, time.Duration) {
	if d <= 0 {
		return nil, 0, nil, 0
	}
	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	var first error
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			e := 0
			var fe error
			for time.Now().Before(stop) {
				t0 := time.Now()
				if err := s(context.Background()); err != nil {
					e++
					if fe == nil {
						fe = err
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += e
			if first == nil {
				first = fe
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, errs, first, time.Since(start)
}

// tensorMeta is one input in the server's model metadata.
type tensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// fixShape replaces variable dims by rows (the first) or 1.
func fixShape(shape []int64, rows int) []int64 {
	out := slices.Clone(shape)
	for i, d := range out {
		if d < 0 {
			out[i] = 1
			if i == 0 {
				out[i] = int64(rows)
			}
		}
	}
	return out
}

func count(shape []int64) int {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	return n
}

// randomFP32 returns n little-endian float32s in [-1, 1).
func randomFP32(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, 0, 4*n)
	for range n {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(r.Float32()*2-1))
	}
	return b
}

// restSender returns a sender posting one binary-tensor request (FP32 inputs) repeatedly.
func restSender(o options, seed uint64) (sender, error) {
	base := "http://" + o.addr
	resp, err := http.Get(base + "/v2/models/" + o.model)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var meta struct{ Inputs []tensorMeta }
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil || resp.StatusCode != 200 {
		return nil, fmt.Errorf("model metadata: status %d, %v", resp.StatusCode, err)
	}
	var inputs []map[string]any
	var bin []byte
	for _, in := range meta.Inputs {
		if in.Datatype != "FP32" {
			return nil, fmt.Errorf("input %s is %s: serve_load sends FP32 only", in.Name, in.Datatype)
		}
		shape := fixShape(in.Shape, o.rows)
		data := randomFP32(count(shape), seed<<8+uint64(len(inputs)))
		inputs = append(inputs, map[string]any{"name": in.Name, "shape": shape, "datatype": "FP32",
			"parameters": map[string]any{"binary_data_size": len(data)}})
		bin = append(bin, data...)
	}
	js, _ := json.Marshal(map[string]any{"inputs": inputs, "parameters": map[string]any{"binary_data_output": true}})
	body := append(js, bin...)
	hl := strconv.Itoa(len(js))
	url := base + "/v2/models/" + o.model + "/infer"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Inference-Header-Content-Length", hl)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		return nil
	}, nil
}

// grpcSender returns a sender calling ModelInfer with raw input contents repeatedly.
func grpcSender(o options, client inferencepb.GRPCInferenceServiceClient, seed uint64) (sender, error) {
	meta, err := client.ModelMetadata(context.Background(), &inferencepb.ModelMetadataRequest{Name: o.model})
	if err != nil {
		return nil, fmt.Errorf("model metadata: %w", err)
	}
	req := &inferencepb.ModelInferRequest{ModelName: o.model}
	for _, in := range meta.GetInputs() {
		if in.GetDatatype() != "FP32" {
			return nil, fmt.Errorf("input %s is %s: serve_load sends FP32 only", in.GetName(), in.GetDatatype())
		}
		shape := fixShape(in.GetShape(), o.rows)
		req.Inputs = append(req.Inputs, &inferencepb.ModelInferRequest_InferInputTensor{Name: in.GetName(), Datatype: "FP32", Shape: shape})
		req.RawInputContents = append(req.RawInputContents, randomFP32(count(shape), seed<<8+uint64(len(req.RawInputContents))))
	}
	return func(ctx context.Context) error {
		_, err := client.ModelInfer(ctx, req)
		return err
	}, nil
}

// directSetup loads the model for -direct and makes its random inputs.
func directSetup(o options) (*dnx.Session, map[string]*dnx.Tensor, error) {
	m, err := dnx.LoadFile(o.direct)
	if err != nil {
		return nil, nil, err
	}
	s, err := dnx.NewSession(m, dnx.Options{Threads: o.threads})
	if err != nil {
		return nil, nil, err
	}
	in := map[string]*dnx.Tensor{}
	for _, v := range m.Inputs() {
		var shape []int64
		for _, d := range v.Shape {
			shape = append(shape, int64(d.Size))
		}
		shape = fixShape(shape, o.rows)
		ints := make([]int, len(shape))
		for i, d := range shape {
			ints[i] = int(d)
		}
		t, err := dnx.TensorFromBytes(v.DType, ints, randomFP32(count(shape), uint64(len(in))))
		if err != nil {
			s.Close()
			return nil, nil, err
		}
		in[v.Name] = t
	}
	return s, in, nil
}

// rss reads process_resident_memory_bytes from the server's metrics, in MiB (0 if absent).
func rss(url string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f / (1 << 20)
		}
	}
	return 0
}
