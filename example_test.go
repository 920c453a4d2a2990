package dnx_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"github.com/dnx-ml/dnx"
)

// The examples build their models in memory (the "tiny" preset: a 16x16, 5-class DenseNet-BC),
// so they need no downloads; with a real model only the first line changes:
// dnx.LoadFile("densenet121.onnx").

// Load a model and run it. Here the model is built in memory and loaded from its bytes, as it
// would be from a file (LoadFile) or a network stream (LoadReader).
func Example() {
	built, err := dnx.BuildPreset("tiny", dnx.BuildOptions{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	onnxBytes, err := built.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	model, err := dnx.LoadBytes(onnxBytes)
	if err != nil {
		log.Fatal(err)
	}

	sess, err := dnx.NewSession(model, dnx.Options{}) // all cores, CPU, default memory budget
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()

	// A batch of two 16x16 RGB images, already normalized.
	x, err := dnx.NewTensor([]int{2, 3, 16, 16}, make([]float32, 2*3*16*16))
	if err != nil {
		log.Fatal(err)
	}
	out, err := sess.Run(context.Background(), map[string]*dnx.Tensor{"input": x})
	if err != nil {
		log.Fatal(err)
	}
	logits, err := out["logits"].Float32s()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out["logits"], len(logits))
	// Output: float32 [2 5] 10
}

// Query what a model takes and returns before feeding it: symbolic dims come back by name.
func ExampleModel_Inputs() {
	model, err := dnx.BuildPreset("tiny", dnx.BuildOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, in := range model.Inputs() {
		fmt.Println("input: ", in)
	}
	for _, out := range model.Outputs() {
		fmt.Println("output:", out)
	}
	batch := model.Inputs()[0].Shape[0]
	fmt.Println("dim 0 fixed:", batch.Fixed(), "name:", batch.Name)
	fmt.Println("opset:", model.Opset())
	fmt.Println("preset:", model.Metadata()["dnx.preset"], "growth:", model.Metadata()["dnx.densenet.growth"])
	// Output:
	// input:  input float32 [batch 3 16 16]
	// output: logits float32 [batch 5]
	// dim 0 fixed: false name: batch
	// opset: 13
	// preset: tiny growth: 4
}

// Build a DenseNet-BC for CIFAR-10 from its configuration.
func ExampleBuild() {
	cfg := dnx.DenseNetConfig{
		Growth: 12, Blocks: []int{4, 4, 4}, InitFeatures: 24, BNSize: 4, Compression: 0.5,
		Stem: "cifar", Classes: 10, InputSize: 32,
	}
	params, err := cfg.Params()
	if err != nil {
		log.Fatal(err)
	}
	model, err := dnx.Build(cfg, dnx.BuildOptions{Seed: 7})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("parameters:", params)
	fmt.Println(model.Inputs()[0])
	fmt.Println(model.Outputs()[0])
	// Output:
	// parameters: 102730
	// input float32 [batch 3 32 32]
	// logits float32 [batch 10]
}

// Save a model atomically and load it back: the weights, metadata and outputs survive, and
// saving is deterministic.
func ExampleModel_Save() {
	dir, err := os.MkdirTemp("", "dnx-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	model, err := dnx.BuildPreset("tiny", dnx.BuildOptions{Seed: 3})
	if err != nil {
		log.Fatal(err)
	}
	model, err = model.WithMetadata(map[string]string{"labels": `["a","b","c","d","e"]`})
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "tiny.onnx")
	if err := model.Save(path); err != nil {
		log.Fatal(err)
	}
	loaded, err := dnx.LoadFile(path)
	if err != nil {
		log.Fatal(err)
	}

	x, err := dnx.NewTensor([]int{1, 3, 16, 16}, ramp(3*16*16))
	if err != nil {
		log.Fatal(err)
	}
	a, b := logitsOf(model, x), logitsOf(loaded, x)
	first, _ := model.Marshal()
	again, _ := loaded.Marshal()
	fmt.Println("labels:", loaded.Metadata()["labels"])
	fmt.Println("same logits:", fmt.Sprint(a) == fmt.Sprint(b))
	fmt.Println("same bytes:", bytes.Equal(first, again))
	// Output:
	// labels: ["a","b","c","d","e"]
	// same logits: true
	// same bytes: true
}

// Convert a PyTorch checkpoint without Python. The fixture is a torchvision DenseNet
// (growth 4, blocks (2, 2), 5 classes, ImageNet stem) saved as .safetensors, with the logits
// PyTorch computed for a fixed input; the architecture is inferred from the tensor shapes (name
// it with ConvertOptions.Preset when it is a preset).
func ExampleConvertCheckpoint() {
	const testdata = "converters/pytorch/testdata"
	model, err := dnx.ConvertCheckpoint(filepath.Join(testdata, "densenet.safetensors"), dnx.ConvertOptions{InputSize: 32})
	if err != nil {
		log.Fatal(err)
	}
	in, err := dnx.LoadNPY(filepath.Join(testdata, "input.npy")) // float16 [2 3 32 32]
	if err != nil {
		log.Fatal(err)
	}
	want, err := dnx.LoadNPY(filepath.Join(testdata, "logits.npy"))
	if err != nil {
		log.Fatal(err)
	}
	values, err := in.Float32s() // the model takes float32: convert (exactly)
	if err != nil {
		log.Fatal(err)
	}
	x, err := dnx.NewTensor(in.Shape(), values)
	if err != nil {
		log.Fatal(err)
	}
	got := logitsOf(model, x)
	ref, _ := want.Float32s()
	worst := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i]-ref[i])))
	}
	fmt.Println("input:", in)
	fmt.Println("logits within 1e-4 of PyTorch:", len(got) == len(ref) && worst <= 1e-4)
	// Output:
	// input: float16 [2 3 32 32]
	// logits within 1e-4 of PyTorch: true
}

// Fine-tune a model for a few steps on one batch and get the trained model back.
func ExampleTrainer() {
	model, err := dnx.BuildPreset("tiny", dnx.BuildOptions{Seed: 5})
	if err != nil {
		log.Fatal(err)
	}
	tr, err := dnx.NewTrainer(model, dnx.TrainOptions{LR: 0.05, Momentum: 0.9})
	if err != nil {
		log.Fatal(err)
	}
	images, labels := stripes(10)
	ctx := context.Background()
	var first, last dnx.StepResult
	for i := range 20 {
		st, err := tr.Step(ctx, images, labels)
		if err != nil {
			log.Fatal(err)
		}
		if i == 0 {
			first = st
		}
		last = st
	}
	trained, err := tr.Model()
	if err != nil {
		log.Fatal(err)
	}
	// The loss does not depend on the number of threads, so it can be printed.
	fmt.Printf("steps: %d, first loss %.3f, last loss %.2f\n", tr.Steps(), first.Loss, last.Loss)
	fmt.Println("trained model:", trained.Outputs()[0])
	// Output:
	// steps: 20, first loss 1.684, last loss 0.46
	// trained model: logits float32 [batch 5]
}

// Fine-tune with the loop of "dnx finetune": epochs of shuffled batches, a validation after
// every epoch and a checkpoint to resume from.
func ExampleTrainer_Fit() {
	model, err := dnx.BuildPreset("tiny", dnx.BuildOptions{Seed: 5})
	if err != nil {
		log.Fatal(err)
	}
	tr, err := dnx.NewTrainer(model, dnx.TrainOptions{LR: 0.05, Momentum: 0.9})
	if err != nil {
		log.Fatal(err)
	}
	images, labels := stripes(20)
	valImages, valLabels := stripes(10)
	dir, err := os.MkdirTemp("", "fit")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	validations := 0
	res, err := tr.Fit(context.Background(), dnx.FitOptions{
		Images: images, Labels: labels, ValImages: valImages, ValLabels: valLabels,
		Batch: 5, Epochs: 4, Shuffle: true, Seed: 1, CheckpointDir: dir,
		Progress: func(p dnx.FitProgress) error {
			if p.Validation {
				validations++
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d steps in %d epochs, %d validations\n", res.Steps, res.Epochs, validations)
	fmt.Printf("last epoch: loss %.2f; validation: loss %.2f, accuracy %.0f%%\n", res.TrainLoss, res.ValLoss, 100*res.ValAcc)
	// Output:
	// 16 steps in 4 epochs, 4 validations
	// last epoch: loss 1.23; validation: loss 1.04, accuracy 60%
}

// A cancelled context stops a run between operators; the error matches ctx.Err().
func ExampleSession_Run_cancel() {
	model, err := dnx.BuildPreset("tiny", dnx.BuildOptions{})
	if err != nil {
		log.Fatal(err)
	}
	sess, err := dnx.NewSession(model, dnx.Options{Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	x, err := dnx.NewTensor([]int{1, 3, 16, 16}, make([]float32, 3*16*16))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a caller gone away, a deadline passed
	_, err = sess.Run(ctx, map[string]*dnx.Tensor{"input": x})
	fmt.Println(err)
	fmt.Println("cancelled:", errors.Is(err, context.Canceled))
	// Output:
	// dnx: run: context canceled
	// cancelled: true
}

// Errors about the inputs name the input at fault and match ErrInput.
func ExampleSession_Run_badInput() {
	model, err := dnx.BuildPreset("tiny", dnx.BuildOptions{})
	if err != nil {
		log.Fatal(err)
	}
	sess, err := dnx.NewSession(model, dnx.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	x, err := dnx.NewTensor([]int{1, 3, 32, 32}, make([]float32, 3*32*32)) // the model takes 16x16
	if err != nil {
		log.Fatal(err)
	}
	_, err = sess.Run(context.Background(), map[string]*dnx.Tensor{"input": x})
	fmt.Println(err)
	fmt.Println("bad input:", errors.Is(err, dnx.ErrInput))
	// Output:
	// dnx: run: bad input: input "input" dim 2 is 32, the model expects 16 (shape float32[batch,3,16,16])
	// bad input: true
}

// ramp returns n values rising from -1 to 1.
func ramp(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = -1 + 2*float32(i)/float32(n-1)
	}
	return v
}

// logitsOf runs model on x and returns its "logits" output.
func logitsOf(model *dnx.Model, x *dnx.Tensor) []float32 {
	sess, err := dnx.NewSession(model, dnx.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Run(context.Background(), map[string]*dnx.Tensor{"input": x})
	if err != nil {
		log.Fatal(err)
	}
	logits, err := out["logits"].Float32s()
	if err != nil {
		log.Fatal(err)
	}
	return logits
}

// stripes returns n 16x16 images of 5 classes told apart by the period of their stripes, and
// their labels: a task the tiny model learns in a few steps.
func stripes(n int) (*dnx.Tensor, []int64) {
	const size = 16
	data := make([]float32, 0, n*3*size*size)
	labels := make([]int64, n)
	for i := range n {
		class := i % 5
		labels[i] = int64(class)
		for c := range 3 {
			for y := range size {
				for x := range size {
					v := float32(-1)
					if (x/(class+1))%2 == 0 {
						v = 1
					}
					data = append(data, v*float32(c+1)/3+float32(y)/size)
				}
			}
		}
	}
	t, err := dnx.NewTensor([]int{n, 3, size, size}, data)
	if err != nil {
		log.Fatal(err)
	}
	return t, labels
}
