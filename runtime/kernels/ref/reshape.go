package ref

import (
	"github.com/dnx-ml/dnx/runtime/ops"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// Reshape, Flatten, Squeeze and Unsqueeze keep the elements and their row-major order and only
// change the shape: out.Data = copy(in.Data), out.Shape = the op's output shape.

// reshapeKernel resolves the requested shape (attribute, or input 1 from opset 5) and copies the
// data under it.
func reshapeKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	r, err := opAs[*ops.Reshape](op)
	if err != nil {
		return nil, err
	}
	x, err := mvInput("Reshape", in, 0)
	if err != nil {
		return nil, err
	}
	spec := r.Shape
	if r.ShapeFromInput {
		if spec, err = mvInts("Reshape", in, 1); err != nil {
			return nil, err
		}
	}
	shape, err := r.OutputShape(x.Shape, spec)
	if err != nil {
		return nil, err
	}
	return mvOne(mvReshaped(x, shape))
}

// flattenKernel copies the data under the 2-D shape [prod(dims[:axis]), prod(dims[axis:])].
func flattenKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	f, err := opAs[*ops.Flatten](op)
	if err != nil {
		return nil, err
	}
	x, err := mvInput("Flatten", in, 0)
	if err != nil {
		return nil, err
	}
	shape, err := f.OutputShape(x.Shape)
	if err != nil {
		return nil, err
	}
	return mvOne(mvReshaped(x, shape))
}

// squeezeKernel copies the data without the listed (or all) size-1 dims.
func squeezeKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	s, err := opAs[*ops.Squeeze](op)
	if err != nil {
		return nil, err
	}
	x, err := mvInput("Squeeze", in, 0)
	if err != nil {
		return nil, err
	}
	axes := s.Axes
	if s.AxesFromInput && mvOptional(in, 1) != nil {
		if axes, err = mvInts("Squeeze", in, 1); err != nil {
			return nil, err
		}
	}
	shape, err := s.OutputShape(x.Shape, axes)
	if err != nil {
		return nil, err
	}
	return mvOne(mvReshaped(x, shape))
}

// unsqueezeKernel copies the data with size-1 dims inserted at the axes.
func unsqueezeKernel(op ops.Op, in []*tensor.Tensor, nOut int) ([]*tensor.Tensor, error) {
	u, err := opAs[*ops.Unsqueeze](op)
	if err != nil {
		return nil, err
	}
	x, err := mvInput("Unsqueeze", in, 0)
	if err != nil {
		return nil, err
	}
	axes := u.Axes
	if u.AxesFromInput {
		if axes, err = mvInts("Unsqueeze", in, 1); err != nil {
			return nil, err
		}
	}
	shape, err := u.OutputShape(x.Shape, axes)
	if err != nil {
		return nil, err
	}
	return mvOne(mvReshaped(x, shape))
}

// mvOne wraps a single output.
func mvOne(t *tensor.Tensor, err error) ([]*tensor.Tensor, error) {
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{t}, nil
}
