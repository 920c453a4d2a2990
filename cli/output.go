package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
	"github.com/dnx-ml/dnx/runtime/tensor/npy"
)

// number is a float64 that encodes NaN and infinities as JSON null instead of failing.
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

// dimsJSON converts a static type's dims for JSON: known sizes as numbers, symbolic dims by name,
// unknown dims as null. An unranked shape is null.
func dimsJSON(t ops.Type) []any {
	if t.Unranked {
		return nil
	}
	out := make([]any, len(t.Shape))
	for i, d := range t.Shape {
		switch {
		case d.IsKnown():
			out[i] = d.Value
		case d.Param != "":
			out[i] = d.Param
		}
	}
	return out
}

// shapeText formats a concrete shape as [1,3,224,224].
func shapeText(s tensor.Shape) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// siCount formats a count with three significant digits and an SI suffix: 2.87 G, 559 K, 80.
func siCount(n int64) string {
	return scaled(float64(n), 1000, []string{"", " K", " M", " G", " T", " P", " E"})
}

// byteCount formats a size in bytes with binary prefixes: 14.6 KiB.
func byteCount(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	return scaled(float64(n), 1024, []string{" B", " KiB", " MiB", " GiB", " TiB", " PiB", " EiB"})
}

// scaled divides v by base until it is below base and prints three significant digits.
func scaled(v, base float64, units []string) string {
	u := 0
	for v >= base && u < len(units)-1 {
		v /= base
		u++
	}
	if u == 0 {
		return strconv.FormatFloat(v, 'f', -1, 64) + units[0]
	}
	digits := 2
	switch {
	case v >= 100:
		digits = 0
	case v >= 10:
		digits = 1
	}
	s := strconv.FormatFloat(v, 'f', digits, 64)
	if f, _ := strconv.ParseFloat(s, 64); f >= base && u < len(units)-1 { // 999.6 K rounds to 1.00 M
		return strconv.FormatFloat(f/base, 'f', 2, 64) + units[u+1]
	}
	return s + units[u]
}

// groupDigits formats n with thousands separators: 3,725.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// tensorFormat is how an output file is encoded, chosen by its extension.
type tensorFormat int

const (
	formatPB tensorFormat = iota
	formatNPY
)

// outputFormat returns the format for a file name: .pb (ONNX TensorProto) or .npy.
func outputFormat(path string) (tensorFormat, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".pb":
		return formatPB, nil
	case ".npy":
		return formatNPY, nil
	}
	return 0, usagef("run: --output %s: unknown extension %q (use .pb for an ONNX TensorProto or .npy for NumPy)", path, filepath.Ext(path))
}

// writeTensor writes t to path atomically in the given format; name is the TensorProto's name.
func writeTensor(path string, f tensorFormat, t *tensor.Tensor, name string) error {
	if f == formatPB {
		return onnx.WriteTensorFile(path, t, name)
	}
	data, err := npy.Marshal(t)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return onnx.WriteFileAtomic(path, data, 0o644)
}

// topEntry is one of the K most likely classes of one batch row.
type topEntry struct {
	Row   int    `json:"row"`
	Class int    `json:"class"`
	Label string `json:"label,omitempty"` // the class's name, when known (see outputReport.LabelsFrom)
	Prob  number `json:"prob"`
	Logit number `json:"logit"`
}

// isClassifier reports whether an output looks like class scores: floating point [N, C], C >= 2.
func isClassifier(t *tensor.Tensor) bool {
	return t.DType.IsFloat() && t.Rank() == 2 && t.Shape[1] >= 2
}

// topK returns, for each row of the [N, C] logits t, the k classes with the highest softmax
// probability p_c = exp(x_c - max x) / sum_j exp(x_j - max x), best first (ties by class index).
// NaN logits sort last.
func topK(t *tensor.Tensor, k int) []topEntry {
	n, c := t.Shape[0], t.Shape[1]
	k = min(k, c)
	vals := t.Float64s()
	var out []topEntry
	for r := 0; r < n; r++ {
		row := vals[r*c : (r+1)*c]
		m := math.Inf(-1)
		for _, v := range row {
			if v > m {
				m = v
			}
		}
		sum := 0.0
		for _, v := range row {
			sum += math.Exp(v - m)
		}
		idx := make([]int, c)
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool {
			va, vb := row[idx[a]], row[idx[b]]
			if math.IsNaN(vb) {
				return !math.IsNaN(va)
			}
			return va > vb
		})
		for _, i := range idx[:k] {
			out = append(out, topEntry{Row: r, Class: i, Prob: number(math.Exp(row[i]-m) / sum), Logit: number(row[i])})
		}
	}
	return out
}

// summary returns min, mean and max of a numeric tensor (NaN when empty).
func summary(t *tensor.Tensor) (lo, mean, hi float64) {
	if t.DType == tensor.String || t.Len() == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	vals := t.Float64s()
	lo, hi = math.Inf(1), math.Inf(-1)
	sum := 0.0
	for _, v := range vals {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
		sum += v
	}
	return lo, sum / float64(len(vals)), hi
}
