package builders

// Params returns the number of trainable values of the network cfg describes: conv weights, BN
// scale and shift (γ, β), and the classifier's weight and bias. BN running statistics are buffers,
// not parameters, and are excluded, as in PyTorch's sum(p.numel() for p in model.parameters()).
//
// With c channels into a dense layer, B = BNSize*k and a 3x3 conv to k channels:
//
//	bottleneck layer: 2c + c*B + 2B + 9*B*k
//	plain layer:      2c + 9*c*k
//	transition C->T:  2C + C*T,  T = floor(θC)
//	stem:             27*F0 (CIFAR) or 147*F0 + 2*F0 (ImageNet, with norm0)
//	head:             2C + C*classes + classes
//
// The count is computed from the arithmetic alone (no weights are built); Build's initializers
// agree with it, which the tests check. cfg is assumed valid (see Validate).
func Params(cfg Config) int64 {
	var p int64
	ch := int64(cfg.InitFeatures)
	if cfg.Stem == StemImageNet {
		p += 3*7*7*ch + 2*ch
	} else {
		p += 3 * 3 * 3 * ch
	}
	k, b := int64(cfg.Growth), int64(cfg.BNSize)*int64(cfg.Growth)
	for i, n := range cfg.Blocks {
		for l := 0; l < n; l++ {
			if cfg.Bottleneck() {
				p += 2*ch + ch*b + 2*b + 9*b*k
			} else {
				p += 2*ch + 9*ch*k
			}
			ch += k
		}
		if i < len(cfg.Blocks)-1 {
			t := int64(transitionChannels(int(ch), cfg.Compression))
			p += 2*ch + ch*t
			ch = t
		}
	}
	cl := int64(cfg.Classes)
	return p + 2*ch + ch*cl + cl
}

// MACs returns the multiply-accumulates of one forward pass on a single InputSize x InputSize
// image, counting the convolutions (Cout*Hout*Wout*Cin*kh*kw each) and the classifier
// (C*classes). BN, ReLU, pooling and concatenation are not counted: they are memory-bound and
// a few percent of the work. cfg is assumed valid (see Validate).
func MACs(cfg Config) int64 {
	var m int64
	ch := int64(cfg.InitFeatures)
	s := cfg.InputSize
	if cfg.Stem == StemImageNet {
		h := int64(convOut(s, 7, 2, 3))
		m += ch * h * h * 3 * 7 * 7
	} else {
		m += ch * int64(s) * int64(s) * 3 * 3 * 3
	}
	hw := int64(stemOutSize(cfg.Stem, s))
	k, b := int64(cfg.Growth), int64(cfg.BNSize)*int64(cfg.Growth)
	for i, n := range cfg.Blocks {
		px := hw * hw
		for l := 0; l < n; l++ {
			if cfg.Bottleneck() {
				m += px * (ch*b + 9*b*k)
			} else {
				m += px * 9 * ch * k
			}
			ch += k
		}
		if i < len(cfg.Blocks)-1 {
			t := int64(transitionChannels(int(ch), cfg.Compression))
			m += px * ch * t
			ch, hw = t, hw/2
		}
	}
	return m + ch*int64(cfg.Classes)
}
