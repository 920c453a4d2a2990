package train

import "math"

// param is one trained (or frozen) initializer: its current value, its gradient for the step, and
// the optimizer's buffers.
type param struct {
	name  string
	shape []int
	data  []float32
	grad  []float32 // nil when frozen
	train bool
	// Optimizer state: SGD's momentum buffer in buf, Adam's exp_avg and exp_avg_sq in m and v;
	// nil until the first update that creates them.
	buf, m, v []float32
}

// gradNorm returns the global L2 norm of the trained parameters' gradients.
func gradNorm(ps []*param) float64 {
	var s float64
	for _, p := range ps {
		if !p.train {
			continue
		}
		for _, g := range p.grad {
			s += float64(g) * float64(g)
		}
	}
	return math.Sqrt(s)
}

// clipGrads scales every gradient by min(1, maxNorm/(norm+1e-6)), as
// torch.nn.utils.clip_grad_norm_ does.
func clipGrads(ps []*param, norm, maxNorm float64) {
	coef := float32(min(1, maxNorm/(norm+1e-6)))
	for _, p := range ps {
		if !p.train {
			continue
		}
		for i := range p.grad {
			p.grad[i] *= coef
		}
	}
}

// update applies one optimizer step with learning rate lr to every trained parameter; step is
// the number of updates made before this one. The arithmetic follows torch.optim (1.13) in
// float32, operation for operation:
//
//	SGD:   g += wd*p; buf = g on the first step, else buf = momentum*buf + (1-dampening)*g;
//	       g = g + momentum*buf (Nesterov) or buf (momentum > 0); p -= lr*g
//	Adam:  g += wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
//	       p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps),  t = step+1
//	AdamW: p *= 1 - lr*wd, then Adam without the wd term.
func update(c OptimConfig, ps []*param, lr float64, step int) {
	for _, p := range ps {
		if !p.train {
			continue
		}
		switch c.Name {
		case optAdam, optAdamW:
			adamUpdate(c, p, lr, step)
		default:
			sgdUpdate(c, p, lr)
		}
	}
}

func sgdUpdate(c OptimConfig, p *param, lr float64) {
	wd, mom, damp := float32(c.WeightDecay), float32(c.Momentum), float32(1-c.Dampening)
	neglr := float32(-lr)
	first := p.buf == nil
	if c.Momentum != 0 && first {
		p.buf = make([]float32, len(p.data))
	}
	for i, g := range p.grad {
		if c.WeightDecay != 0 {
			g += wd * p.data[i]
		}
		if c.Momentum != 0 {
			b := g
			if !first {
				b = p.buf[i]*mom + damp*g
			}
			p.buf[i] = b
			if c.Nesterov {
				g += mom * b
			} else {
				g = b
			}
		}
		p.data[i] += neglr * g
	}
}

func adamUpdate(c OptimConfig, p *param, lr float64, step int) {
	if p.m == nil {
		p.m, p.v = make([]float32, len(p.data)), make([]float32, len(p.data))
	}
	t := float64(step + 1)
	b1, b2 := float32(c.Beta1), float32(c.Beta2)
	bc1 := 1 - math.Pow(c.Beta1, t)
	bc2sqrt := float32(math.Sqrt(1 - math.Pow(c.Beta2, t)))
	negStep := float32(-lr / bc1)
	eps := float32(c.Eps)
	wd := float32(c.WeightDecay)
	decay := float32(1 - lr*c.WeightDecay)
	for i, g := range p.grad {
		if c.WeightDecay != 0 {
			if c.Name == optAdamW {
				p.data[i] *= decay
			} else {
				g += wd * p.data[i]
			}
		}
		m := p.m[i]*b1 + (1-b1)*g
		v := p.v[i]*b2 + (1-b2)*g*g
		p.m[i], p.v[i] = m, v
		denom := float32(math.Sqrt(float64(v)))/bc2sqrt + eps
		p.data[i] += negStep * (m / denom)
	}
}
