package train

import (
	"fmt"
	"math"
	"strings"
)

// LR returns the learning rate of step step (counted from 0) for base rate base:
//
//	warmup (step < WarmupSteps):  base * (step+1) / WarmupSteps
//	then, with t = step - WarmupSteps:
//	  constant:  base
//	  step:      base * Gamma^floor(t / StepSize)                        (torch StepLR)
//	  cosine:    base * (1 + cos(pi * min(t, T) / T)) / 2, T = TotalSteps - WarmupSteps
//	                                                      (torch CosineAnnealingLR, eta_min 0)
//
// An unknown kind, or a step or cosine schedule without its length, gives base (New rejects
// them).
func (s Schedule) LR(base float64, step int) float64 {
	if step < 0 {
		step = 0
	}
	if s.WarmupSteps > 0 && step < s.WarmupSteps {
		return base * float64(step+1) / float64(s.WarmupSteps)
	}
	t := step - max(s.WarmupSteps, 0)
	switch strings.ToLower(s.Kind) {
	case "step":
		if s.StepSize > 0 {
			return base * math.Pow(s.Gamma, float64(t/s.StepSize))
		}
	case "cosine":
		if T := s.TotalSteps - max(s.WarmupSteps, 0); T > 0 {
			return base * (1 + math.Cos(math.Pi*float64(min(t, T))/float64(T))) / 2
		}
	}
	return base
}

// check reports an ErrOptions error for a schedule LR cannot follow.
func (s Schedule) check() error {
	if s.WarmupSteps < 0 {
		return fmt.Errorf("%w: warmup steps %d is negative", ErrOptions, s.WarmupSteps)
	}
	switch strings.ToLower(s.Kind) {
	case "", "constant":
	case "step":
		if s.StepSize <= 0 || s.Gamma < 0 {
			return fmt.Errorf("%w: a step schedule needs a positive step size and a non-negative gamma (got %d, %g)", ErrOptions, s.StepSize, s.Gamma)
		}
	case "cosine":
		if s.TotalSteps <= s.WarmupSteps {
			return fmt.Errorf("%w: a cosine schedule needs total steps (%d) beyond the warmup (%d)", ErrOptions, s.TotalSteps, s.WarmupSteps)
		}
	default:
		return fmt.Errorf("%w: unknown schedule %q (want constant, step or cosine)", ErrOptions, s.Kind)
	}
	return nil
}
