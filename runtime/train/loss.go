package train

import (
	"fmt"
	"math"
)

// crossEntropy computes PyTorch's CrossEntropyLoss(reduction='mean', label_smoothing=eps) of
// logits z ([n, k] row-major) and writes its gradient into dz:
//
//	q[i,c]  = (1-eps)*[c == y_i] + eps/k
//	loss    = mean_i sum_c q[i,c] * (logsumexp(z_i) - z[i,c])
//	dz[i,c] = (softmax(z_i)[c] - q[i,c]) / n
//
// in float64. It also counts the samples whose largest logit (the first, on ties) is the label.
func crossEntropy(z []float32, labels []int64, k int, eps float64, dz []float32) (loss float64, correct int, err error) {
	n := len(labels)
	for i, y := range labels {
		if y < 0 || y >= int64(k) {
			return 0, 0, fmt.Errorf("%w: label %d of sample %d is outside [0, %d)", ErrInput, y, i, k)
		}
	}
	for i, y := range labels {
		row := z[i*k : (i+1)*k]
		mx, arg := math.Inf(-1), 0
		for c, v := range row {
			if float64(v) > mx {
				mx, arg = float64(v), c
			}
		}
		if int64(arg) == y {
			correct++
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v) - mx)
		}
		lse := mx + math.Log(s)
		for c, v := range row {
			q := eps / float64(k)
			if int64(c) == y {
				q += 1 - eps
			}
			loss += q * (lse - float64(v))
			if dz != nil {
				dz[i*k+c] = float32((math.Exp(float64(v)-lse) - q) / float64(n))
			}
		}
	}
	return loss / float64(n), correct, nil
}
