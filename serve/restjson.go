package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/dnx-ml/dnx"
)

// The protocol's JSON inference request and response, with Triton's binary tensor data
// extension: a body may be JSON followed by binary sections (Inference-Header-Content-Length
// says where the JSON ends), an input with parameters.binary_data_size takes its elements from
// the next section, and outputs asked for with binary_data (or binary_data_output for all) are
// sent the same way.

type restRequest struct {
	ID         string          `json:"id,omitempty"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Inputs     []restInput     `json:"inputs"`
	Outputs    []restOutputReq `json:"outputs,omitempty"`
}

type restInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

type restOutputReq struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type restResponse struct {
	ModelName    string       `json:"model_name"`
	ModelVersion string       `json:"model_version"`
	ID           string       `json:"id,omitempty"`
	Outputs      []restOutput `json:"outputs"`
}

type restOutput struct {
	Name       string          `json:"name"`
	Datatype   string          `json:"datatype"`
	Shape      []int           `json:"shape"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// parsedREST is a decoded REST request: the protocol-independent part and what the response
// needs (id, which outputs go binary).
type parsedREST struct {
	id    string
	infer inferRequest
	// binaryOut says, per requested output name, whether it is sent as a binary section;
	// binaryAll is binary_data_output, for outputs not listed.
	binaryOut map[string]bool
	binaryAll bool
}

// parseRESTRequest decodes body, whose first headerLen bytes are JSON when the header is given
// (else all of it). Errors are 400s naming the field at fault.
func parseRESTRequest(body []byte, headerLen string) (*parsedREST, error) {
	jsonPart, bin := body, []byte(nil)
	if headerLen != "" {
		n, err := strconv.Atoi(headerLen)
		if err != nil || n < 0 {
			return nil, badRequest("header %s: %q is not a length", headerLength, headerLen)
		}
		if n > len(body) {
			return nil, badRequest("header %s: %d, but the body has only %d bytes (truncated body)", headerLength, n, len(body))
		}
		jsonPart, bin = body[:n], body[n:]
	}
	req, ok := decodeRESTFast(jsonPart)
	if !ok {
		dec := json.NewDecoder(bytes.NewReader(jsonPart))
		if err := dec.Decode(&req); err != nil {
			return nil, badRequest("malformed JSON request: %v", jsonError(err))
		}
		if dec.More() {
			return nil, badRequest("malformed JSON request: data after the request object (binary data needs the %s header)", headerLength)
		}
	}
	if len(req.Inputs) == 0 {
		return nil, badRequest("inputs: the request has no input tensors")
	}
	p := &parsedREST{id: req.ID, binaryOut: map[string]bool{}}
	var err error
	if p.binaryAll, err = boolParam(req.Parameters, "binary_data_output", "parameters"); err != nil {
		return nil, err
	}
	for i, o := range req.Outputs {
		p.infer.outputs = append(p.infer.outputs, o.Name)
		field := fmt.Sprintf("outputs[%d].parameters", i)
		if _, ok := o.Parameters["binary_data"]; ok {
			b, err := boolParam(o.Parameters, "binary_data", field)
			if err != nil {
				return nil, err
			}
			p.binaryOut[o.Name] = b
		}
	}

	// Binary sections follow the JSON in input order; find each one's bytes first, so that a
	// truncated body is reported whatever the inputs' order of validation.
	off := 0
	for i, in := range req.Inputs {
		field := fmt.Sprintf("inputs[%d]", i)
		wi := wireInput{field: field, name: in.Name, datatype: in.Datatype, shape: in.Shape}
		size, hasSize, err := intParam(in.Parameters, "binary_data_size", field+".parameters")
		if err != nil {
			return nil, err
		}
		switch {
		case hasSize:
			if in.Data != nil {
				return nil, badRequest("%s %q: both data and parameters.binary_data_size are given", field, in.Name)
			}
			if size > int64(len(bin)-off) {
				return nil, badRequest("%s %q: binary_data_size %d, but only %d bytes of binary data remain (truncated body)", field, in.Name, size, len(bin)-off)
			}
			section := bin[off : off+int(size)]
			off += int(size)
			wi.decode = func(d dnx.DType, n int) ([]byte, error) {
				if want := n * d.ByteSize(); len(section) != want {
					return nil, fmt.Errorf("binary_data_size %d, but %s %v takes %d bytes", len(section), in.Datatype, in.Shape, want)
				}
				return section, nil
			}
		case in.Data == nil:
			return nil, badRequest("%s %q: no data (give data, or parameters.binary_data_size with a binary section)", field, in.Name)
		default:
			data := in.Data
			wi.decode = func(d dnx.DType, n int) ([]byte, error) {
				b, err := jsonDataToBytes(data, d, n)
				if err != nil {
					return nil, fmt.Errorf("data: %w", err)
				}
				return b, nil
			}
		}
		p.infer.inputs = append(p.infer.inputs, wi)
	}
	if off != len(bin) {
		return nil, badRequest("binary data: the body holds %d bytes after the JSON, the inputs' binary_data_size add up to %d", len(bin), off)
	}
	return p, nil
}

// jsonError makes encoding/json's errors name the field (inputs.shape) where they can.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Errorf("field %s: %s is not a valid %s", te.Field, te.Value, te.Type)
	}
	return err
}

// boolParam reads an optional boolean parameter.
func boolParam(params map[string]any, key, field string) (bool, error) {
	v, ok := params[key]
	if !ok {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, badRequest("%s.%s: %v is not a boolean", field, key, v)
	}
	return b, nil
}

// intParam reads an optional non-negative integer parameter.
func intParam(params map[string]any, key, field string) (int64, bool, error) {
	v, ok := params[key]
	if !ok {
		return 0, false, nil
	}
	f, ok := v.(float64)
	if !ok || f < 0 || f != math.Trunc(f) || f > math.MaxInt32 {
		return 0, false, badRequest("%s.%s: %v is not a size in bytes", field, key, v)
	}
	return int64(f), true, nil
}

// encodeRESTResponse builds the response body: JSON, then the binary sections of the outputs
// asked for as binary. It returns the body and the JSON part's length.
func encodeRESTResponse(m *servedModel, req *parsedREST, res inferResult) ([]byte, int, error) {
	resp := restResponse{ModelName: m.name, ModelVersion: m.version, ID: req.id}
	var bin []byte
	for _, o := range res.outputs {
		ro := restOutput{Name: o.name, Datatype: datatypeName(o.dtype), Shape: o.shape}
		if ro.Shape == nil {
			ro.Shape = []int{}
		}
		binary, listed := req.binaryOut[o.name]
		if !listed {
			binary = req.binaryAll
		}
		if binary {
			ro.Parameters = map[string]any{"binary_data_size": len(o.raw)}
			bin = append(bin, o.raw...)
		} else {
			ro.Data = appendJSONData(nil, o.dtype, o.raw)
		}
		resp.Outputs = append(resp.Outputs, ro)
	}
	js, err := json.Marshal(resp)
	if err != nil {
		return nil, 0, fmt.Errorf("encoding the response: %w", err)
	}
	return append(js, bin...), len(js), nil
}
