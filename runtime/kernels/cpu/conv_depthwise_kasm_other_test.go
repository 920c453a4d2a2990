//go:build !amd64 || purego

package cpu

// dwRowsHW: the assembly does not exist in this build; the interpreter runs alone.
func dwRowsHW(name string) func(dst, src, w []float32, b float32, cl dwClamp, g dwGeom) { return nil }

// dwSplitHW: no assembly in this build.
func dwSplitHW() func(e, o, x []float32) { return nil }

// dwChansHW: no assembly in this build.
func dwChansHW() func(pl *dwPlan, x, y, w, b []float32, nch int, p []float32, cl dwClamp) { return nil }
