package npy

import (
	"errors"
	"fmt"
	"strconv"
)

// parseHeader parses the Python dict literal of a .npy header. It accepts exactly what NumPy's
// writers produce and its reader accepts: the keys 'descr' (a string), 'fortran_order' (True or
// False) and 'shape' (a tuple of non-negative integers), each once, in any order, with optional
// trailing commas and whitespace. A list-valued descr (a structured dtype) is refused.
func parseHeader(s string) (header, error) {
	p := &parser{s: s}
	var h header
	seen := map[string]bool{}
	if !p.consume('{') {
		return h, errors.New("the header is not a dict literal")
	}
	for {
		if p.consume('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return h, fmt.Errorf("dict key: %w", err)
		}
		if seen[key] {
			return h, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		if !p.consume(':') {
			return h, fmt.Errorf("missing ':' after key %q", key)
		}
		switch key {
		case "descr":
			if p.peek() == '[' {
				return h, fmt.Errorf("%w: structured dtypes", ErrUnsupported)
			}
			if h.descr, err = p.str(); err != nil {
				return h, fmt.Errorf("descr: %w", err)
			}
		case "fortran_order":
			if h.fortran, err = p.boolean(); err != nil {
				return h, fmt.Errorf("fortran_order: %w", err)
			}
		case "shape":
			if h.shape, err = p.tuple(); err != nil {
				return h, fmt.Errorf("shape: %w", err)
			}
		default:
			return h, fmt.Errorf("unexpected key %q", key)
		}
		if p.consume(',') {
			continue
		}
		if !p.consume('}') {
			return h, fmt.Errorf("expected ',' or '}' after %q", key)
		}
		break
	}
	p.space()
	if p.i != len(p.s) {
		return h, fmt.Errorf("unexpected text after the dict at byte %d", p.i)
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("missing key %q", k)
		}
	}
	return h, nil
}

// parser is a cursor over the header text.
type parser struct {
	s string
	i int
}

// space skips whitespace (the padding is spaces and a final newline; NumPy's reader is a Python
// literal parser, which also allows tabs and carriage returns).
func (p *parser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (p *parser) peek() byte {
	p.space()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// consume skips c if it is the next non-space byte.
func (p *parser) consume(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// str reads a quoted string without escapes (no key or dtype NumPy writes has any).
func (p *parser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", errors.New("expected a quoted string")
	}
	start := p.i + 1
	for j := start; j < len(p.s); j++ {
		switch p.s[j] {
		case q:
			p.i = j + 1
			return p.s[start:j], nil
		case '\\':
			return "", errors.New("escape sequences are not supported")
		}
	}
	return "", errors.New("unterminated string")
}

// boolean reads True or False.
func (p *parser) boolean() (bool, error) {
	p.space()
	for _, w := range []struct {
		word string
		v    bool
	}{{"True", true}, {"False", false}} {
		if len(p.s)-p.i >= len(w.word) && p.s[p.i:p.i+len(w.word)] == w.word {
			p.i += len(w.word)
			return w.v, nil
		}
	}
	return false, errors.New("expected True or False")
}

// tuple reads a tuple of non-negative integers: (), (3,), (2, 3) or (2, 3,). Python 2 era files
// may write long integers with an L suffix (3L).
func (p *parser) tuple() ([]int64, error) {
	if !p.consume('(') {
		return nil, errors.New("expected a tuple")
	}
	dims := []int64{}
	comma := false // whether the last dim was followed by a comma
	for {
		if p.consume(')') {
			if len(dims) == 1 && !comma {
				// "(3)" is the integer 3 in Python, not a tuple; NumPy never writes it.
				return nil, errors.New("(n) is not a tuple; write (n,)")
			}
			return dims, nil
		}
		p.space()
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if p.i == start {
			return nil, errors.New("expected a non-negative integer")
		}
		if p.i-start > 1 && p.s[start] == '0' {
			return nil, fmt.Errorf("integer %q has a leading zero", p.s[start:p.i])
		}
		d, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("dim %q is out of range", p.s[start:p.i])
		}
		if p.i < len(p.s) && (p.s[p.i] == 'L' || p.s[p.i] == 'l') {
			p.i++
		}
		dims = append(dims, d)
		if len(dims) > 64 {
			return nil, errors.New("more than 64 dims")
		}
		comma = p.consume(',')
		if !comma && p.peek() != ')' {
			return nil, errors.New("expected ',' or ')'")
		}
	}
}
