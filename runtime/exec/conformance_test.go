package exec

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/internal/testenv"
	"github.com/dnx-ml/dnx/onnx"
	"github.com/dnx-ml/dnx/runtime/graph"
	"github.com/dnx-ml/dnx/runtime/plan"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// conformanceTolerance holds per-test overrides of ONNX's default rtol/atol, each as upstream sets
// them.
var conformanceTolerance = map[string][2]float64{
	// upstream real/test_densenet121/data.json
	"light/test_densenet121": {2e-3, 1e-7},
}

// TestConformance runs every test folder of ONNX's backend test data in ../shared/onnx-tests the
// way ONNX's runner does: feed input_K.pb to the K-th non-initializer graph input, compare output_K.pb
// with the K-th graph output (same dtype and shape, |got-want| <= atol + rtol*|want|).
func TestConformance(t *testing.T) {
	root := testenv.Shared(t, "onnx-tests")
	dirs := readIndex(t, filepath.Join(root, "INDEX.tsv"))
	for name := range conformanceExclusions {
		if !contains(dirs, name) {
			t.Errorf("exclusion %q names a test that is not in INDEX.tsv", name)
		}
	}
	var passed, failed, excluded, unplanned int
	for _, dir := range dirs {
		if reason, ok := conformanceExclusions[dir]; ok {
			excluded++
			t.Run(dir, func(t *testing.T) { t.Skip(reason) })
			continue
		}
		var notPlannable bool
		ok := t.Run(dir, func(t *testing.T) {
			for _, mode := range []struct {
				name string
				opts Options
			}{{"reference", Options{Reference: true}}, {"planned", Options{Threads: 2}}} {
				t.Run(mode.name, func(t *testing.T) {
					if runBackendTest(t, filepath.Join(root, dir), dir, mode.opts) {
						notPlannable = true
					}
				})
			}
		})
		switch {
		case !ok:
			failed++
		default:
			passed++
			if notPlannable {
				unplanned++
			}
		}
	}
	// The first part of the line is what CI greps; the planned mode of a graph that cannot be
	// planned ran the reference path again, so those are counted apart.
	t.Logf("ONNX conformance: %d passed, %d failed, %d excluded (of %d); %d of the passed on the reference path in planned mode: not plannable",
		passed, failed, excluded, len(dirs), unplanned)
}

// runBackendTest runs one backend test folder with opts. In planned mode (not opts.Reference) it
// also checks that the session compiled a plan for the inputs' shapes, since Session.Run falls
// back to the reference kernels for a graph that cannot be planned: it then logs why and returns
// true (the test ran on the reference path, not the plan); any other compile error fails it.
func runBackendTest(t *testing.T, dir, name string, opts Options) (notPlannable bool) {
	g, err := graph.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	s, err := New(g, opts)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	defer s.Close()
	rtol, atol := tensor.ONNXRtol, tensor.ONNXAtol
	if tol, ok := conformanceTolerance[name]; ok {
		rtol, atol = tol[0], tol[1]
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 {
		t.Fatal("no test_data_set_* folder")
	}
	for _, set := range sets {
		inputs := readNumbered(t, set, "input")
		want := readNumbered(t, set, "output")
		got, err := s.Run(context.Background(), inputs)
		if err != nil {
			t.Fatalf("%s: run: %v", filepath.Base(set), err)
		}
		if !opts.Reference {
			shapes := make([]tensor.Shape, len(inputs))
			for i, in := range inputs {
				shapes[i] = in.Shape
			}
			// Plan returns the plan Run used (cached per shapes), or why there was none.
			p, err := s.Plan(shapes)
			switch {
			case errors.Is(err, plan.ErrNotPlannable):
				t.Logf("%s: on the reference path, not planned: %v", filepath.Base(set), err)
				notPlannable = true
			case err != nil:
				t.Errorf("%s: plan: %v", filepath.Base(set), err)
			case p == nil:
				t.Errorf("%s: no plan and no reason", filepath.Base(set))
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d outputs, want %d", filepath.Base(set), len(got), len(want))
		}
		for k := range want {
			if err := tensor.AllClose(got[k], want[k], rtol, atol); err != nil {
				t.Errorf("%s: output %d (%s): %v", filepath.Base(set), k, g.Outputs[k].Name, err)
			}
		}
	}
	return notPlannable
}

// readNumbered reads prefix_0.pb, prefix_1.pb, ... in numeric order.
func readNumbered(t *testing.T, dir, prefix string) []*tensor.Tensor {
	t.Helper()
	var out []*tensor.Tensor
	for k := 0; ; k++ {
		p := filepath.Join(dir, prefix+"_"+itoa(k)+".pb")
		if _, err := os.Stat(p); err != nil {
			return out
		}
		tt, _, err := onnx.ReadTensorFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, tt)
	}
}

func itoa(k int) string { return strconv.Itoa(k) }

func readIndex(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		if first {
			continue // header
		}
		if fields := strings.Split(sc.Text(), "\t"); len(fields) > 0 && fields[0] != "" {
			dirs = append(dirs, fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(dirs)
	return dirs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
