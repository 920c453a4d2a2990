package data_test

import (
	"context"
	"fmt"

	"github.com/dnx-ml/dnx/runtime/data"
)

// ExampleLoader trains on 80% of a synthetic dataset for two epochs, with shuffling and
// augmentation, and validates on the rest.
func ExampleLoader() {
	train, val := data.Split(data.Shapes(100, 16, 1), 0.2, 1)
	fmt.Println("train", train.Len(), "val", val.Len(), "classes", train.ClassNames())
	l, err := data.NewLoader(train, data.LoaderOptions{Batch: 32, Shuffle: true, Augment: true, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	for epoch := range 2 {
		it := l.Epoch(ctx, epoch)
		for b, ok := it.Next(); ok; b, ok = it.Next() {
			fmt.Println("epoch", epoch, "X", b.X.Shape, "labels", len(b.Y))
		}
		if err := it.Err(); err != nil {
			fmt.Println(err)
		}
		it.Close()
	}
	// Output:
	// train 80 val 20 classes [red circle green square blue triangle yellow cross]
	// epoch 0 X [32 3 16 16] labels 32
	// epoch 0 X [32 3 16 16] labels 32
	// epoch 0 X [16 3 16 16] labels 16
	// epoch 1 X [32 3 16 16] labels 32
	// epoch 1 X [32 3 16 16] labels 32
	// epoch 1 X [16 3 16 16] labels 16
}
