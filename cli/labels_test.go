package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/builders"
	"github.com/dnx-ml/dnx/models"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/labels"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// runLabels is the part of dnx run --json the label tests read.
type runLabels struct {
	Outputs []struct {
		LabelsFrom string `json:"labels_from"`
		Top        []struct {
			Class int
			Label string
		}
	}
}

// classifier1000 writes the tiny preset with a 1000-class classifier: ImageNet's class count.
func classifier1000(t *testing.T) string {
	t.Helper()
	p, err := models.Lookup("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.Config.Clone()
	cfg.Classes = 1000
	m, err := builders.Build(cfg, builders.BuildOptions{Seed: 1, Inference: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c1000.onnx")
	if err := onnx.WriteModelFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}

// dnx run names the top classes from --labels FILE, else the model's metadata, else ImageNet's
// names for 1000 classes, and says which in --json; a list of the wrong length is one error
// line naming where it came from.
func TestRunLabels(t *testing.T) {
	dir := t.TempDir()
	model := builtTiny(t)
	five := []string{"ant", "bee", "cat", "dog", "eel"}
	named := withMetadata(t, model, labels.MetadataKey, labels.Encode(five))
	short := withMetadata(t, model, labels.MetadataKey, `["ant","bee"]`)
	file := filepath.Join(dir, "names.txt")
	if err := os.WriteFile(file, []byte("one\ntwo\nthree\nfour\nfive\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	three := filepath.Join(dir, "three.txt")
	if err := os.WriteFile(three, []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := writePNG(t, 20, 18)
	tests := []struct {
		name  string
		model string
		flags []string
		from  string
		names []string // by class index; nil: no label
	}{
		{"model metadata", named, nil, string(labels.FromModel), five},
		{"--labels overrides the metadata", named, []string{"--labels", file}, string(labels.FromFile), []string{"one", "two", "three", "four", "five"}},
		{"--labels", model, []string{"--labels", file}, string(labels.FromFile), []string{"one", "two", "three", "four", "five"}},
		{"ImageNet for 1000 classes", classifier1000(t), nil, string(labels.FromImageNet), labels.ImageNet()},
		{"no names", model, nil, string(labels.None), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", tc.model, "--input", img}, tc.flags...)
			var rep runLabels
			if err := json.Unmarshal([]byte(mustSucceed(t, append(args, "--json")...)), &rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Outputs) != 1 || rep.Outputs[0].LabelsFrom != tc.from || len(rep.Outputs[0].Top) != 5 {
				t.Fatalf("outputs %+v, want 5 top classes named by %q", rep.Outputs, tc.from)
			}
			text := mustSucceed(t, args...)
			for _, e := range rep.Outputs[0].Top {
				want := ""
				if tc.names != nil {
					want = tc.names[e.Class]
				}
				if e.Label != want {
					t.Errorf("class %d: label %q, want %q", e.Class, e.Label, want)
				}
				if want != "" && !strings.Contains(text, want+" ("+strconv.Itoa(e.Class)+")") {
					t.Errorf("the text lacks %q:\n%s", want+" ("+strconv.Itoa(e.Class)+")", text)
				}
			}
		})
	}

	errs := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"--labels of the wrong length", []string{"run", model, "--input", img, "--labels", three}, 1, []string{"--labels", three, "3 names for 5 classes"}},
		{"metadata of the wrong length", []string{"run", short, "--input", img}, 1, []string{short, `metadata "labels"`, "2 names for 5 classes", "--labels FILE"}},
		{"--labels missing", []string{"run", model, "--input", img, "--labels", filepath.Join(dir, "none.txt")}, 1, []string{"--labels", "none.txt", "no such file"}},
		{"--labels with --top 0", []string{"run", model, "--input", img, "--labels", file, "--top", "0"}, 2, []string{"--labels", "--top 0"}},
		{"--labels without a classifier", []string{"run", constantOfShapeModel(t, []int64{4}, tensor.Float32), "--labels", file}, 1, []string{"--labels " + file, "no output", "classifier"}},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, status := dnx(t, tc.args...)
			if status != tc.status || stdout != "" {
				t.Errorf("status %d, stdout %q; want %d and nothing", status, stdout, tc.status)
			}
			checkOneLine(t, stderr, tc.want...)
		})
	}
}

// dnx finetune --data records the class folders' names in the model it writes, and dnx run then
// shows them; tensors record none, and a new classifier drops the names of the old one.
func TestFinetuneLabels(t *testing.T) {
	model := trainableTiny(t) // 5 classes
	photos := imageFolder(t, 2, 4, 16, 11)
	out := filepath.Join(t.TempDir(), "tuned.onnx")
	finetune(t, model, "--data", photos, "--classes", "2", "--steps", "2", "--batch", "4", "-o", out)
	meta := modelMetadata(t, out)
	if meta[labels.MetadataKey] != `["class0","class1"]` {
		t.Fatalf("labels metadata %q, want the folder names", meta[labels.MetadataKey])
	}
	img := filepath.Join(photos, "class1", "img00.png")
	var rep runLabels
	if err := json.Unmarshal([]byte(mustSucceed(t, "run", out, "--input", img, "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Outputs[0].LabelsFrom != string(labels.FromModel) || len(rep.Outputs[0].Top) != 2 {
		t.Fatalf("run: %+v", rep)
	}
	for _, e := range rep.Outputs[0].Top {
		if e.Label != "class"+strconv.Itoa(e.Class) {
			t.Errorf("class %d is named %q, want its folder's name", e.Class, e.Label)
		}
	}
	if text := mustSucceed(t, "run", out, "--input", img); !strings.Contains(text, "class1 (1)") || !strings.Contains(text, "class names: model metadata") {
		t.Errorf("run text:\n%s", text)
	}

	// dnx convert keeps the names.
	for _, flags := range [][]string{{"--optimize"}, {"--opset", "17"}} {
		conv := filepath.Join(t.TempDir(), "conv.onnx")
		mustSucceed(t, append([]string{"convert", out, "-o", conv}, flags...)...)
		if got := modelMetadata(t, conv)[labels.MetadataKey]; got != `["class0","class1"]` {
			t.Errorf("convert %v: labels %q", flags, got)
		}
	}

	// The folder has 2 classes, the model 5: outputs 2..4 keep their index as a name.
	out5 := filepath.Join(t.TempDir(), "tuned5.onnx")
	finetune(t, model, "--data", photos, "--steps", "1", "--batch", "4", "-o", out5)
	if got := modelMetadata(t, out5)[labels.MetadataKey]; got != `["class0","class1","2","3","4"]` {
		t.Errorf("5 outputs, 2 folders: labels %q", got)
	}

	// Tensors name no classes; a new head drops the names the old one had.
	x, y := tensorData(t, 4, 2, 16)
	named := withMetadata(t, model, labels.MetadataKey, `["a","b","c","d","e"]`)
	for _, tc := range []struct {
		name  string
		args  []string
		names string
	}{
		{"tensors", []string{model, "--x", x, "--y", y}, ""},
		{"tensors keep the model's names", []string{named, "--x", x, "--y", y}, `["a","b","c","d","e"]`},
		{"a new head drops them", []string{named, "--x", x, "--y", y, "--classes", "3"}, ""},
	} {
		o := filepath.Join(t.TempDir(), "o.onnx")
		finetune(t, append(tc.args, "--steps", "1", "--batch", "2", "-o", o)...)
		if got := modelMetadata(t, o)[labels.MetadataKey]; got != tc.names {
			t.Errorf("%s: labels %q, want %q", tc.name, got, tc.names)
		}
	}
}

// modelMetadata returns a model file's metadata_props.
func modelMetadata(t *testing.T, path string) map[string]string {
	t.Helper()
	g, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return g.MetadataMap()
}
