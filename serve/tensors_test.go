package serve

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx"
	"github.com/dnx-ml/dnx/serve/inferencepb"
)

// TestJSONDataRoundTrip reads JSON data of every numeric datatype, flat and nested, and writes
// it back: the values survive exactly.
func TestJSONDataRoundTrip(t *testing.T) {
	cases := []struct {
		datatype string
		in       string
		want     string // appendJSONData of the decoded bytes
	}{
		{"BOOL", `[[true,false],[false,true]]`, `[true,false,false,true]`},
		{"UINT8", `[0,255,7,1]`, `[0,255,7,1]`},
		{"UINT16", `[0,65535,7,1]`, `[0,65535,7,1]`},
		{"UINT32", `[[0,4294967295],[7,1]]`, `[0,4294967295,7,1]`},
		{"UINT64", `[0,18446744073709551615,7,1]`, `[0,18446744073709551615,7,1]`},
		{"INT8", `[-128,127,0,-1]`, `[-128,127,0,-1]`},
		{"INT16", `[-32768,32767,0,-1]`, `[-32768,32767,0,-1]`},
		{"INT32", `[-2147483648,2147483647,0,-1]`, `[-2147483648,2147483647,0,-1]`},
		{"INT64", `[ [-9223372036854775808, 9223372036854775807], [0, -1] ]`, `[-9223372036854775808,9223372036854775807,0,-1]`},
		{"FP16", `[0.5,-2,65504,0.0001]`, `[0.5,-2,6.55e+04,0.0001]`}, // the fewest digits that round back to float16 65504
		{"BF16", `[0.5,-2,3.0e38,1]`, `[0.5,-2,3e+38,1]`},
		{"FP32", `[[0.1,-2.5e-8],[3.4028235e38,1e-45]]`, `[0.1,-2.5e-08,3.4028235e+38,1e-45]`},
		{"FP64", `[0.1,-2.5e-300,1.7976931348623157e308,5e-324]`, `[0.1,-2.5e-300,1.7976931348623157e+308,5e-324]`},
	}
	for _, c := range cases {
		t.Run(c.datatype, func(t *testing.T) {
			d, ok := parseDatatype(c.datatype)
			if !ok {
				t.Fatalf("datatype %s unknown", c.datatype)
			}
			raw, err := jsonDataToBytes([]byte(c.in), d, 4)
			if err != nil {
				t.Fatal(err)
			}
			// Through a dnx tensor and back, as the server does.
			tensor, err := dnx.TensorFromBytes(d, []int{2, 2}, raw)
			if err != nil {
				t.Fatal(err)
			}
			back, err := tensor.AppendBytes(nil)
			if err != nil || !bytes.Equal(back, raw) {
				t.Fatalf("AppendBytes: %v, %v != %v", err, back, raw)
			}
			if got := string(appendJSONData(nil, d, raw)); got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

// TestJSONDataErrors checks the messages for data that does not fit its datatype or shape.
func TestJSONDataErrors(t *testing.T) {
	cases := []struct {
		datatype, in string
		n            int
		want         string
	}{
		{"INT8", `[128]`, 1, `"128" is not a valid INT8 value`},
		{"UINT8", `[-1]`, 1, `"-1" is not a valid UINT8 value`},
		{"INT32", `[1.5]`, 1, `"1.5" is not a valid INT32 value`},
		{"BOOL", `[1]`, 1, `"1" is not a boolean`},
		{"FP32", `[null]`, 1, `"null" is not a valid FP32 value`},
		{"FP32", `[{"a":1}]`, 1, "element 0 is not a number"},
		{"FP32", `[1,2]`, 3, "holds 2 elements, the shape needs 3"},
		{"FP32", `[1,2,3,4]`, 3, "more than the shape's 3 elements"},
		{"BYTES", `["a"]`, 1, "datatype BYTES is not supported"},
	}
	for _, c := range cases {
		d, _ := parseDatatype(c.datatype)
		_, err := jsonDataToBytes([]byte(c.in), d, c.n)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: error %v, want %q", c.datatype, c.in, err, c.want)
		}
	}
}

// TestContentsToBytes checks gRPC's typed contents for each field and their range checks.
func TestContentsToBytes(t *testing.T) {
	cases := []struct {
		datatype string
		c        *inferencepb.InferTensorContents
		want     string // JSON of the result, or the error
	}{
		{"BOOL", &inferencepb.InferTensorContents{BoolContents: []bool{true, false}}, `[true,false]`},
		{"INT8", &inferencepb.InferTensorContents{IntContents: []int32{-5, 100}}, `[-5,100]`},
		{"INT8", &inferencepb.InferTensorContents{IntContents: []int32{-5, 200}}, "int_contents[1] = 200 is out of range for INT8"},
		{"INT16", &inferencepb.InferTensorContents{IntContents: []int32{-300, 300}}, `[-300,300]`},
		{"INT32", &inferencepb.InferTensorContents{IntContents: []int32{-1, 7}}, `[-1,7]`},
		{"INT64", &inferencepb.InferTensorContents{Int64Contents: []int64{-1, 1 << 40}}, `[-1,1099511627776]`},
		{"UINT8", &inferencepb.InferTensorContents{UintContents: []uint32{0, 255}}, `[0,255]`},
		{"UINT16", &inferencepb.InferTensorContents{UintContents: []uint32{0, 70000}}, "uint_contents[1] = 70000 is out of range for UINT16"},
		{"UINT32", &inferencepb.InferTensorContents{UintContents: []uint32{0, 70000}}, `[0,70000]`},
		{"UINT64", &inferencepb.InferTensorContents{Uint64Contents: []uint64{0, 1 << 63}}, `[0,9223372036854775808]`},
		{"FP32", &inferencepb.InferTensorContents{Fp32Contents: []float32{0.1, -3}}, `[0.1,-3]`},
		{"FP64", &inferencepb.InferTensorContents{Fp64Contents: []float64{0.1, -3}}, `[0.1,-3]`},
		{"FP32", &inferencepb.InferTensorContents{Fp32Contents: []float32{0.1}}, "fp32_contents holds 1 elements, the shape needs 2"},
		{"FP16", &inferencepb.InferTensorContents{}, "send it in raw_input_contents"},
	}
	for _, c := range cases {
		d, _ := parseDatatype(c.datatype)
		raw, err := contentsToBytes(c.c, d, 2)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = string(appendJSONData(nil, d, raw))
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%s %v: got %q, want %q", c.datatype, c.c, got, c.want)
		}
	}
}

// TestParseModelArg checks model names from the command line.
func TestParseModelArg(t *testing.T) {
	cases := []struct {
		arg, name, path, err string
	}{
		{"models/resnet.onnx", "resnet", "models/resnet.onnx", ""},
		{"cls=a/b/model.onnx", "cls", "a/b/model.onnx", ""},
		{"x=", "", "", "empty path"},
		{"a/b=c.onnx", "", "", "URLs cannot carry"},
		{"=m.onnx", "", "", "not usable in a URL"},
	}
	for _, c := range cases {
		s, err := ParseModelArg(c.arg)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.arg, err, c.err)
			}
			continue
		}
		if err != nil || s.Name != c.name || s.Path != c.path || s.Version != "1" {
			t.Errorf("%q: %+v %v", c.arg, s, err)
		}
	}
}
