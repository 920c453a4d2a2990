package serve

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// restFastCases are request JSONs for decodeRESTFast: fast says whether it must decode them
// itself (the requests clients send every time) rather than leave them to encoding/json.
var restFastCases = []struct {
	name string
	js   string
	fast bool
}{
	{"binary input, binary outputs", `{"inputs":[{"name":"input","shape":[1,3,16,16],"datatype":"FP32","parameters":{"binary_data_size":3072}}],"parameters":{"binary_data_output":true}}`, true},
	{"spaces, id, outputs", " {\n \"id\" : \"r1\", \"inputs\": [ {\"name\":\"a\",\"datatype\":\"FP16\",\"shape\":[ 2 , 5 ],\"parameters\":{}} ],\n\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":false}},{\"name\":\"z\"}]}\t\r\n", true},
	{"two inputs, numbers", `{"inputs":[{"name":"a","shape":[-1,0],"datatype":"INT8","parameters":{"binary_data_size":1e2,"x":-0.5E-3,"s":"t"}},{"name":"b","shape":[7],"datatype":"BOOL","parameters":{"binary_data_size":7}}]}`, true},
	{"JSON data", `{"inputs":[{"name":"a","shape":[2],"datatype":"FP32","data":[1,2]}]}`, false},
	{"key in other case", `{"Inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`, false},
	{"unknown key", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}],"extra":1}`, false},
	{"duplicate key", `{"inputs":[],"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`, false},
	{"duplicate parameter", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4,"binary_data_size":8}}]}`, false},
	{"escaped string", `{"inputs":[{"name":"a\u0062","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`, false},
	{"non-ASCII string", `{"id":"é","inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`, false},
	{"float dim", `{"inputs":[{"name":"a","shape":[1.0],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`, false},
	{"huge dim", `{"inputs":[{"name":"a","shape":[99999999999999999999],"datatype":"FP32"}]}`, false},
	{"leading zero", `{"inputs":[{"name":"a","shape":[01],"datatype":"FP32"}]}`, false},
	{"null parameter", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":null}}]}`, false},
	{"object parameter", `{"parameters":{"p":{}},"inputs":[{"name":"a","shape":[1],"datatype":"FP32"}]}`, false},
	{"null shape", `{"inputs":[{"name":"a","shape":null,"datatype":"FP32"}]}`, false},
	{"empty inputs", `{"inputs":[]}`, false},
	{"no inputs", `{"id":"x"}`, false},
	{"trailing data", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32"}]} {}`, false},
	{"truncated", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32"}]`, false},
	{"truex", `{"parameters":{"binary_data_output":truex},"inputs":[{"name":"a","shape":[1],"datatype":"FP32"}]}`, false},
	{"not an object", `[1]`, false},
	{"empty", ``, false},
}

// TestDecodeRESTFast: the fast decoder takes the common requests and declines the rest, and
// whatever it takes it decodes exactly as encoding/json does.
func TestDecodeRESTFast(t *testing.T) {
	for _, tc := range restFastCases {
		t.Run(tc.name, func(t *testing.T) {
			_, ok := decodeRESTFast([]byte(tc.js))
			if ok != tc.fast {
				t.Errorf("decoded on the fast path: %v, want %v", ok, tc.fast)
			}
			checkRESTFast(t, []byte(tc.js))
		})
	}
}

// FuzzDecodeRESTFast checks on any input that the fast decoder agrees with encoding/json
// whenever it decodes something.
func FuzzDecodeRESTFast(f *testing.F) {
	for _, tc := range restFastCases {
		f.Add([]byte(tc.js))
	}
	f.Fuzz(func(t *testing.T, js []byte) { checkRESTFast(t, js) })
}

// checkRESTFast fails t if decodeRESTFast accepts js and encoding/json (as parseRESTRequest
// runs it) does not, or decodes it otherwise.
func checkRESTFast(t *testing.T, js []byte) {
	t.Helper()
	got, ok := decodeRESTFast(js)
	if !ok {
		return
	}
	var want restRequest
	dec := json.NewDecoder(bytes.NewReader(js))
	if err := dec.Decode(&want); err != nil || dec.More() {
		t.Fatalf("fast path accepted %q, encoding/json refuses it (%v, more data: %v)", js, err, dec.More())
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast path decoded %q as\n%#v\nencoding/json as\n%#v", js, got, want)
	}
}
