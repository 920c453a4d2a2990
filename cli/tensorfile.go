package cli

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/tensor/npy"
)

// readTensorFile reads a .npy or .pb (ONNX TensorProto) tensor file, choosing by extension.
func readTensorFile(path string) (*tensor.Tensor, error) {
	if strings.EqualFold(filepath.Ext(path), ".npy") {
		return npy.ReadFile(path)
	}
	t, _, err := onnx.ReadTensorFile(path)
	return t, err
}

// narrowFloat64 returns the float64 tensor t, read from arg, as float32 for a consumer of
// float32 (a model input, training images), with a one-line note on stderr: NumPy makes float64
// arrays by default, and refusing them would only make users convert by hand. Values that
// overflow float32 (finite in float64, beyond ±3.4e38) are refused, naming the first; NaN and
// infinities carry over as they are. Other tensors are returned unchanged. dnx run, dnx bench
// and dnx finetune all read float64 tensors through it.
func narrowFloat64(cmd string, arg fileArg, t *tensor.Tensor, stderr io.Writer) (*tensor.Tensor, error) {
	if t.DType != tensor.Float64 {
		return t, nil
	}
	src := tensor.Data[float64](t)
	dst := make([]float32, len(src))
	for i, v := range src {
		if !math.IsInf(v, 0) && math.Abs(v) > math.MaxFloat32 {
			return nil, fmt.Errorf("%s: %s holds float64 values and element %d (%g) is beyond float32's range (±%.4g): rescale the data",
				cmd, arg, i, v, math.MaxFloat32)
		}
		dst[i] = float32(v)
	}
	fmt.Fprintf(stderr, "%s: note: %s holds float64 values; converted to float32\n", cmd, arg)
	return tensor.FromSlice(t.Shape, dst), nil
}

// tensorFileDType returns the element type a .npy or .pb tensor file declares, reading only
// what it must (the .npy header; the TensorProto's fields up to data_type, skipping the data
// without holding it). ok is false when the file cannot say: the reader that loads it reports
// why.
func tensorFileDType(path string) (dt tensor.DType, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	r := bufio.NewReader(f)
	if strings.EqualFold(filepath.Ext(path), ".npy") {
		return npyDType(r)
	}
	return protoDType(r)
}

// npyDType reads a .npy header's 'descr' (see package npy) and maps the type codes dnx reads
// as float32 or float64.
func npyDType(r *bufio.Reader) (tensor.DType, bool) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil || string(pre[:6]) != "\x93NUMPY" {
		return 0, false
	}
	var n uint32
	if pre[6] == 1 {
		var l uint16
		if binary.Read(r, binary.LittleEndian, &l) != nil {
			return 0, false
		}
		n = uint32(l)
	} else if binary.Read(r, binary.LittleEndian, &n) != nil {
		return 0, false
	}
	if n > npy.MaxHeaderLen {
		return 0, false
	}
	h := make([]byte, n)
	if _, err := io.ReadFull(r, h); err != nil {
		return 0, false
	}
	_, rest, ok := strings.Cut(string(h), "'descr'")
	if !ok {
		return 0, false
	}
	_, rest, ok = strings.Cut(rest, "'")
	descr, _, ok2 := strings.Cut(rest, "'")
	if !ok || !ok2 {
		return 0, false
	}
	switch strings.TrimLeft(descr, "<=|") {
	case "f8":
		return tensor.Float64, true
	case "f4":
		return tensor.Float32, true
	}
	return 0, false
}

// protoDType scans a serialized TensorProto for its data_type (field 2, a varint), skipping the
// other fields.
func protoDType(r *bufio.Reader) (tensor.DType, bool) {
	for {
		tag, err := binary.ReadUvarint(r)
		if err != nil {
			return 0, false
		}
		field, wire := tag>>3, tag&7
		switch wire {
		case 0:
			v, err := binary.ReadUvarint(r)
			if err != nil {
				return 0, false
			}
			if field == 2 {
				return tensor.DType(v), true
			}
		case 1:
			if _, err := r.Discard(8); err != nil {
				return 0, false
			}
		case 2:
			n, err := binary.ReadUvarint(r)
			if err != nil || n > math.MaxInt32 {
				return 0, false
			}
			if _, err := r.Discard(int(n)); err != nil {
				return 0, false
			}
		case 5:
			if _, err := r.Discard(4); err != nil {
				return 0, false
			}
		default:
			return 0, false
		}
	}
}
