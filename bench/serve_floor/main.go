// Command serve_floor is the transport floor of dnx serve's overhead: a server that speaks the
// same Open Inference Protocol calls as `dnx serve` (REST model metadata and binary infer, gRPC
// ModelMetadata and ModelInfer) with the same libraries and settings, but computes nothing and
// decodes nothing: every infer request gets the same canned answer once its body is read. Timed
// with bench/serve_load on the same machine, its latency is what the machine's loopback, HTTP or
// gRPC stack and goroutine and thread wake-ups cost before dnx does anything; dnx serve's latency
// minus the model's time minus this floor is what dnx's own request handling costs.
//
//	go run ./bench/serve_floor -http 127.0.0.1:18500 -grpc 127.0.0.1:18501 &
//	go run ./bench/serve_load -proto grpc -addr 127.0.0.1:18501 -model floor -c 1 -d 10s
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"

	"google.golang.org/grpc"

	"github.com/dnx-ml/dnx/serve/inferencepb"
)

func main() {
	httpAddr := flag.String("http", "127.0.0.1:18500", "REST listen address")
	grpcAddr := flag.String("grpc", "127.0.0.1:18501", "gRPC listen address")
	shape := flag.String("shape", "-1,3,16,16", "the one FP32 input's shape the metadata declares (densenet_tiny's)")
	outputs := flag.Int("outputs", 5, "FP32 values in the canned output (densenet_tiny: 5 logits)")
	flag.Parse()
	var dims []int64
	for _, s := range strings.Split(*shape, ",") {
		d, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			log.Fatalf("-shape %q: %v", *shape, err)
		}
		dims = append(dims, d)
	}
	out := make([]byte, 4**outputs)
	for i := range *outputs {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(float32(i)))
	}

	meta, _ := json.Marshal(map[string]any{"name": "floor", "versions": []string{"1"}, "platform": "floor",
		"inputs":  []map[string]any{{"name": "input", "datatype": "FP32", "shape": dims}},
		"outputs": []map[string]any{{"name": "logits", "datatype": "FP32", "shape": []int64{-1, int64(*outputs)}}}})
	header, _ := json.Marshal(map[string]any{"model_name": "floor", "model_version": "1",
		"outputs": []map[string]any{{"name": "logits", "datatype": "FP32", "shape": []int64{1, int64(*outputs)},
			"parameters": map[string]any{"binary_data_size": len(out)}}}})
	answer := append(append([]byte(nil), header...), out...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/models/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(meta)
	})
	mux.HandleFunc("POST /v2/models/{name}/infer", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Inference-Header-Content-Length", strconv.Itoa(len(header)))
		w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
		w.Write(answer)
	})
	go func() { log.Fatal(http.ListenAndServe(*httpAddr, mux)) }()

	lis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		log.Fatal(err)
	}
	// The stream workers dnx serve runs calls on (serve.Server.grpcServer).
	srv := grpc.NewServer(grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))))
	inferencepb.RegisterGRPCInferenceServiceServer(srv, &floor{dims: dims, outputs: *outputs, out: out})
	fmt.Printf("serve_floor: REST %s, gRPC %s\n", *httpAddr, *grpcAddr)
	log.Fatal(srv.Serve(lis))
}

// floor answers gRPC ModelMetadata and ModelInfer with canned messages.
type floor struct {
	inferencepb.UnimplementedGRPCInferenceServiceServer
	dims    []int64
	outputs int
	out     []byte
}

func (f *floor) ModelMetadata(context.Context, *inferencepb.ModelMetadataRequest) (*inferencepb.ModelMetadataResponse, error) {
	return &inferencepb.ModelMetadataResponse{Name: "floor", Versions: []string{"1"}, Platform: "floor",
		Inputs:  []*inferencepb.ModelMetadataResponse_TensorMetadata{{Name: "input", Datatype: "FP32", Shape: f.dims}},
		Outputs: []*inferencepb.ModelMetadataResponse_TensorMetadata{{Name: "logits", Datatype: "FP32", Shape: []int64{-1, int64(f.outputs)}}}}, nil
}

func (f *floor) ModelInfer(_ context.Context, req *inferencepb.ModelInferRequest) (*inferencepb.ModelInferResponse, error) {
	return &inferencepb.ModelInferResponse{ModelName: "floor", ModelVersion: "1", Id: req.GetId(),
		Outputs:           []*inferencepb.ModelInferResponse_InferOutputTensor{{Name: "logits", Datatype: "FP32", Shape: []int64{1, int64(f.outputs)}}},
		RawOutputContents: [][]byte{f.out}}, nil
}
