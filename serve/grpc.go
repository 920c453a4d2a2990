package serve

import (
	"context"
	"fmt"
	"time"

	"github.com/dnx-ml/dnx"
	"github.com/dnx-ml/dnx/serve/inferencepb"
)

// grpcService implements inference.GRPCInferenceService on a Server.
type grpcService struct {
	inferencepb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

func (g *grpcService) ServerLive(context.Context, *inferencepb.ServerLiveRequest) (*inferencepb.ServerLiveResponse, error) {
	return &inferencepb.ServerLiveResponse{Live: true}, nil
}

func (g *grpcService) ServerReady(context.Context, *inferencepb.ServerReadyRequest) (*inferencepb.ServerReadyResponse, error) {
	return &inferencepb.ServerReadyResponse{Ready: g.s.Ready()}, nil
}

func (g *grpcService) ModelReady(_ context.Context, req *inferencepb.ModelReadyRequest) (*inferencepb.ModelReadyResponse, error) {
	m, err := g.s.repo.lookup(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	return &inferencepb.ModelReadyResponse{Ready: m.ready.Load() && g.s.Ready()}, nil
}

func (g *grpcService) ServerMetadata(context.Context, *inferencepb.ServerMetadataRequest) (*inferencepb.ServerMetadataResponse, error) {
	return &inferencepb.ServerMetadataResponse{Name: "dnx", Version: g.s.cfg.Version, Extensions: serverExtensions()}, nil
}

func (g *grpcService) ModelMetadata(_ context.Context, req *inferencepb.ModelMetadataRequest) (*inferencepb.ModelMetadataResponse, error) {
	m, err := g.s.repo.lookupReady(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &inferencepb.ModelMetadataResponse{Name: m.name, Platform: platform}
	for _, v := range g.s.repo.models[m.name].versions {
		resp.Versions = append(resp.Versions, v.version)
	}
	for _, v := range m.inputs {
		resp.Inputs = append(resp.Inputs, &inferencepb.ModelMetadataResponse_TensorMetadata{Name: v.Name, Datatype: datatypeName(v.DType), Shape: metadataShape(v)})
	}
	for _, v := range m.outputs {
		resp.Outputs = append(resp.Outputs, &inferencepb.ModelMetadataResponse_TensorMetadata{Name: v.Name, Datatype: datatypeName(v.DType), Shape: metadataShape(v)})
	}
	return resp, nil
}

// ModelInfer runs one request. Inputs come from raw_input_contents (one entry per input, in
// order) or from each input's typed contents; outputs always go back as raw_output_contents, as
// Triton sends them.
func (g *grpcService) ModelInfer(ctx context.Context, req *inferencepb.ModelInferRequest) (*inferencepb.ModelInferResponse, error) {
	start := time.Now()
	ctx, cancel := g.s.requestContext(ctx)
	defer cancel()
	m, err := g.s.repo.lookupReady(req.GetModelName(), req.GetModelVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	ir, err := grpcRequest(req)
	if err != nil {
		g.s.metrics.request(m, 0, time.Since(start), timing{}, err)
		return nil, grpcError(err)
	}
	res, err := g.s.infer(ctx, m, ir, start)
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &inferencepb.ModelInferResponse{ModelName: m.name, ModelVersion: m.version, Id: req.GetId()}
	for _, o := range res.outputs {
		shape := make([]int64, len(o.shape))
		for i, d := range o.shape {
			shape[i] = int64(d)
		}
		resp.Outputs = append(resp.Outputs, &inferencepb.ModelInferResponse_InferOutputTensor{Name: o.name, Datatype: datatypeName(o.dtype), Shape: shape})
		resp.RawOutputContents = append(resp.RawOutputContents, o.raw)
	}
	return resp, nil
}

// grpcRequest converts a ModelInferRequest into an inferRequest.
func grpcRequest(req *inferencepb.ModelInferRequest) (inferRequest, error) {
	var ir inferRequest
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return ir, badRequest("raw_input_contents: %d entries for %d inputs (give one per input, in order)", len(raw), len(req.GetInputs()))
	}
	if len(req.GetInputs()) == 0 {
		return ir, badRequest("inputs: the request has no input tensors")
	}
	for i, in := range req.GetInputs() {
		field := fmt.Sprintf("inputs[%d]", i)
		wi := wireInput{field: field, name: in.GetName(), datatype: in.GetDatatype(), shape: in.GetShape()}
		switch {
		case len(raw) > 0:
			if in.GetContents() != nil {
				return ir, badRequest("%s %q: contents and raw_input_contents are both given", field, in.GetName())
			}
			section := raw[i]
			wi.decode = func(d dnx.DType, n int) ([]byte, error) {
				if want := n * d.ByteSize(); len(section) != want {
					return nil, fmt.Errorf("raw_input_contents[%d] holds %d bytes, %s %v takes %d", i, len(section), in.GetDatatype(), in.GetShape(), want)
				}
				return section, nil
			}
		case in.GetContents() == nil:
			return ir, badRequest("%s %q: no contents (give contents or raw_input_contents)", field, in.GetName())
		default:
			contents := in.GetContents()
			wi.decode = func(d dnx.DType, n int) ([]byte, error) { return contentsToBytes(contents, d, n) }
		}
		ir.inputs = append(ir.inputs, wi)
	}
	for _, o := range req.GetOutputs() {
		ir.outputs = append(ir.outputs, o.GetName())
	}
	return ir, nil
}
