package serve

import (
	"strconv"
)

// decodeRESTFast decodes the JSON of a REST request the way encoding/json decodes it into a
// restRequest, but only for the plain requests that clients send on every inference: keys
// spelled as the protocol spells them, each once, strings without escapes or non-ASCII bytes,
// parameters of scalar values, no "data" (binary inputs). For anything else it returns false,
// and the caller decodes with encoding/json, whose results and errors are the reference: this
// path only saves time (15 us a request against 1-2 us on the test VM, measured; the reflection
// and the maps of the generic decoder were 5-10% of a small model's request over REST), it
// never decides what a request means or how it is refused.
func decodeRESTFast(js []byte) (restRequest, bool) {
	d := fastDecoder{b: js}
	var req restRequest
	ok := d.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			s, ok := d.str()
			req.ID = s
			return ok
		case "parameters":
			var ok bool
			req.Parameters, ok = d.params()
			return ok
		case "inputs":
			return d.array(func() bool {
				var in restInput
				ok := d.object(func(key []byte) bool {
					var ok bool
					switch string(key) {
					case "name":
						in.Name, ok = d.str()
					case "datatype":
						in.Datatype, ok = d.str()
					case "shape":
						in.Shape, ok = d.ints()
					case "parameters":
						in.Parameters, ok = d.params()
					}
					return ok
				})
				req.Inputs = append(req.Inputs, in)
				return ok
			})
		case "outputs":
			return d.array(func() bool {
				var o restOutputReq
				ok := d.object(func(key []byte) bool {
					var ok bool
					switch string(key) {
					case "name":
						o.Name, ok = d.str()
					case "parameters":
						o.Parameters, ok = d.params()
					}
					return ok
				})
				req.Outputs = append(req.Outputs, o)
				return ok
			})
		}
		return false
	})
	d.space()
	if !ok || d.i != len(d.b) || req.Inputs == nil {
		return restRequest{}, false
	}
	return req, true
}

// fastDecoder reads the subset of JSON that decodeRESTFast accepts; every method returns false
// on anything outside it.
type fastDecoder struct {
	b []byte
	i int
}

func (d *fastDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and consumes c if it comes next.
func (d *fastDecoder) next(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// object reads {"key": value, ...}, calling field for each key (which points into the input)
// to read its value. A key seen twice is refused (encoding/json would merge the two), and so are
// objects of more than 8 keys, which no plain request has.
func (d *fastDecoder) object(field func(key []byte) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	var seen [8][]byte
	for n := 0; ; n++ {
		key, ok := d.strBytes()
		if !ok || !d.next(':') || n == len(seen) {
			return false
		}
		for _, k := range seen[:n] {
			if string(k) == string(key) {
				return false
			}
		}
		seen[n] = key
		if !field(key) {
			return false
		}
		if d.next(',') {
			continue
		}
		return d.next('}')
	}
}

// array reads [elem, ...], calling elem for each element; an empty array is refused (it would
// need a non-nil empty slice, and no request has one worth a fast path).
func (d *fastDecoder) array(elem func() bool) bool {
	if !d.next('[') {
		return false
	}
	for {
		if !elem() {
			return false
		}
		if d.next(',') {
			continue
		}
		return d.next(']')
	}
}

// str reads a string of printable ASCII without escapes.
func (d *fastDecoder) str() (string, bool) {
	b, ok := d.strBytes()
	return string(b), ok
}

// strBytes is str without the copy: the string's bytes in the input.
func (d *fastDecoder) strBytes() ([]byte, bool) {
	if !d.next('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return d.b[start : d.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		d.i++
	}
	return nil, false
}

// number returns the text of a JSON number (-?digits[.digits][e[+-]digits], no leading zeros).
func (d *fastDecoder) number() (string, bool) {
	d.space()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	intStart := d.i
	n := digits()
	if n == 0 || (n > 1 && d.b[intStart] == '0') {
		return "", false
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return "", false
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return "", false
		}
	}
	return string(d.b[start:d.i]), true
}

// ints reads a non-empty array of integers that fit int64.
func (d *fastDecoder) ints() ([]int64, bool) {
	out := make([]int64, 0, 4)
	ok := d.array(func() bool {
		s, ok := d.number()
		if !ok {
			return false
		}
		v, err := strconv.ParseInt(s, 10, 64)
		out = append(out, v)
		return err == nil
	})
	return out, ok
}

// params reads an object of scalar values (strings, numbers as float64, booleans), as
// encoding/json fills a map[string]any. null, arrays and objects are refused.
func (d *fastDecoder) params() (map[string]any, bool) {
	m := map[string]any{}
	ok := d.object(func(k []byte) bool {
		key := string(k)
		d.space()
		if d.i >= len(d.b) {
			return false
		}
		switch c := d.b[d.i]; {
		case c == '"':
			s, ok := d.str()
			m[key] = s
			return ok
		case c == 't' || c == 'f':
			for _, lit := range []string{"true", "false"} {
				if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
					d.i += len(lit)
					m[key] = lit == "true"
					return true
				}
			}
			return false
		default:
			s, ok := d.number()
			if !ok {
				return false
			}
			f, err := strconv.ParseFloat(s, 64)
			m[key] = f
			return err == nil
		}
	})
	return m, ok
}
