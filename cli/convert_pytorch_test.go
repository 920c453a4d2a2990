package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"

	"github.com/dnx-ml/dnx/onnx"
)

// checkpointApp is a stand-in for the convert command: convertCheckpoint with its flags plus the
// --opset and -o flags the real command shares with the opset conversion.
func checkpointApp(stdout *bytes.Buffer) *ucli.App {
	flags := append(checkpointFlags(),
		&ucli.IntFlag{Name: "opset"},
		&ucli.StringFlag{Name: "output", Aliases: []string{"o"}},
	)
	return &ucli.App{
		Name:           "dnx",
		Writer:         stdout,
		ErrWriter:      stdout,
		ExitErrHandler: func(*ucli.Context, error) {},
		Commands:       []*ucli.Command{{Name: "convert", Flags: flags, Action: convertCheckpoint}},
	}
}

func TestConvertCheckpoint(t *testing.T) {
	fixtures := filepath.Join("..", "converters", "pytorch", "testdata")
	dir := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		usage   bool   // want a usageError
		wantErr string // substring of the error; "" for success
		wantOut []string
	}{
		{"inferred", []string{"--input-size", "32", "-o", "OUT", "CKPT/densenet_ckpt.pth"}, false, "",
			[]string{"67 tensors loaded (56 model tensors)", "inferred DenseNet-BC k=4 blocks=[2 2]", "training form, opset 13"}},
		{"inference opset 17", []string{"--inference", "--opset", "17", "-o", "OUT", "CKPT/densenet.safetensors"}, false, "",
			[]string{"inference form, opset 17", "input=224x224"}},
		{"legacy", []string{"-o", "OUT", "CKPT/densenet_legacy.pth"}, false, "", []string{"67 tensors loaded"}},
		{"wrong preset", []string{"--preset", "tiny", "-o", "OUT", "CKPT/densenet_ckpt.pth"}, false, `key "features.conv0.weight": checkpoint shape [8 3 7 7], model shape [8 3 3 3]`, nil},
		{"wrong classes", []string{"--classes", "7", "-o", "OUT", "CKPT/densenet_ckpt.pth"}, false, "model shape [7 16]", nil},
		{"unknown preset", []string{"--preset", "resnet50", "-o", "OUT", "CKPT/densenet_ckpt.pth"}, true, "unknown model preset", nil},
		{"no output", []string{"CKPT/densenet_ckpt.pth"}, true, "missing the output file", nil},
		{"bad opset", []string{"--opset", "9", "-o", "OUT", "CKPT/densenet_ckpt.pth"}, true, "--opset 9", nil},
		{"bad classes", []string{"--classes", "0", "-o", "OUT", "CKPT/densenet_ckpt.pth"}, true, "--classes 0", nil},
		{"not a checkpoint", []string{"-o", "OUT", "CKPT/input.npy"}, false, "not a PyTorch checkpoint", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".onnx")
			args := []string{"dnx", "convert"}
			for _, a := range tt.args {
				a = strings.ReplaceAll(a, "CKPT", fixtures)
				if a == "OUT" {
					a = out
				}
				args = append(args, a)
			}
			var stdout bytes.Buffer
			err := checkpointApp(&stdout).RunContext(context.Background(), args)
			if tt.wantErr != "" {
				var u usageError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.As(err, &u) != tt.usage {
					t.Fatalf("err = %v (usage error: %v), want one containing %q (usage error: %v)", err, errors.As(err, &u), tt.wantErr, tt.usage)
				}
				if _, statErr := os.Stat(out); statErr == nil {
					t.Error("an output file was written despite the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(stdout.String(), "\n") != 1 {
				t.Errorf("summary is not one line: %q", stdout.String())
			}
			for _, s := range tt.wantOut {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("summary %q lacks %q", stdout.String(), s)
				}
			}
			m, err := onnx.ReadModelFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.GetGraph().GetInitializer()) == 0 {
				t.Error("written model has no initializers")
			}
		})
	}
}
