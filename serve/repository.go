package serve

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dnx-ml/dnx"
)

// ModelSpec names one model version to serve and the file it is loaded from.
type ModelSpec struct {
	Name    string
	Version string // "1" for models named on the command line
	Path    string
}

// ParseModelArg reads a command-line model argument: NAME=PATH, or PATH, which serves the file
// under its stem (models/resnet.onnx as "resnet"). The version is "1".
func ParseModelArg(arg string) (ModelSpec, error) {
	name, path, ok := strings.Cut(arg, "=")
	if !ok {
		path = arg
		name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	if path == "" {
		return ModelSpec{}, fmt.Errorf("model %q: empty path", arg)
	}
	if err := checkModelName(name); err != nil {
		return ModelSpec{}, fmt.Errorf("model %q: %w", arg, err)
	}
	return ModelSpec{Name: name, Version: "1", Path: path}, nil
}

// checkModelName refuses names that cannot appear as one segment of a /v2/models/NAME URL.
func checkModelName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("model name %q is not usable in a URL", name)
	}
	if strings.ContainsAny(name, "/?#% \t\n") {
		return fmt.Errorf("model name %q holds a character (/?#%% or space) that URLs cannot carry in a path segment", name)
	}
	return nil
}

// ScanRepository lists the models of a folder in Triton's model repository layout:
// DIR/NAME/VERSION/model.onnx, where VERSION is a positive integer. Folders that do not fit
// (no numeric version, no model.onnx) are skipped; a repository with no model at all is an error.
func ScanRepository(dir string) ([]ModelSpec, error) {
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("model repository: %w", err)
	}
	var specs []ModelSpec
	for _, n := range names {
		if !n.IsDir() || strings.HasPrefix(n.Name(), ".") {
			continue
		}
		if checkModelName(n.Name()) != nil {
			continue
		}
		versions, err := os.ReadDir(filepath.Join(dir, n.Name()))
		if err != nil {
			return nil, fmt.Errorf("model repository: %w", err)
		}
		for _, v := range versions {
			if num, err := strconv.ParseUint(v.Name(), 10, 63); err != nil || num == 0 || !v.IsDir() {
				continue
			}
			path := filepath.Join(dir, n.Name(), v.Name(), "model.onnx")
			if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
				continue
			}
			specs = append(specs, ModelSpec{Name: n.Name(), Version: v.Name(), Path: path})
		}
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("model repository %s: no DIR/NAME/VERSION/model.onnx file found", dir)
	}
	return specs, nil
}

// servedModel is one version of one model: its file, its sessions once loaded, and its batcher.
// The fields below ready are written once by load before ready is set, and only read after.
type servedModel struct {
	name, version, path string

	ready atomic.Bool

	inputs, outputs []dnx.ValueInfo
	sessions        []*dnx.Session
	batch           *batcher
	// met are the model's metric series (metrics.forModel).
	met *modelMetrics
	// batchable is true when every input and output has the same symbolic first dim, which
	// dynamic batching stacks requests along.
	batchable bool
}

// load reads the model, creates its sessions (one per instance) and starts its batcher.
func (m *servedModel) load(ctx context.Context, cfg *Config, met *metrics) error {
	model, err := dnx.LoadFile(m.path)
	if err != nil {
		return fmt.Errorf("model %s version %s: %w", m.name, m.version, err)
	}
	for _, in := range model.Inputs() {
		if in.DType.ByteSize() == 0 {
			return fmt.Errorf("model %s version %s: input %q is %s: dnx serve takes numeric inputs only", m.name, m.version, in.Name, in.DType)
		}
	}
	sessions := make([]*dnx.Session, 0, cfg.Instances)
	for range cfg.Instances {
		if err := ctx.Err(); err != nil {
			closeAll(sessions)
			return err
		}
		s, err := dnx.NewSession(model, dnx.Options{Threads: cfg.Threads, MaxMemory: cfg.MaxMemory})
		if err != nil {
			closeAll(sessions)
			return fmt.Errorf("model %s version %s: %w", m.name, m.version, err)
		}
		sessions = append(sessions, s)
	}
	m.inputs, m.outputs, m.sessions = model.Inputs(), model.Outputs(), sessions
	m.batchable = batchDim(m.inputs, m.outputs)
	m.met = met.forModel(m.name, m.version)
	m.batch = newBatcher(m, cfg, met)
	m.ready.Store(true)
	return nil
}

// close stops the batcher (after the requests it holds) and the sessions.
func (m *servedModel) close() {
	if !m.ready.Load() {
		return
	}
	m.ready.Store(false)
	m.batch.stop()
	closeAll(m.sessions)
}

func closeAll(ss []*dnx.Session) {
	for _, s := range ss {
		s.Close()
	}
}

// batchDim reports whether requests to a model with these inputs and outputs can be stacked
// along their first dim and the outputs split back: every one is ranked with the same symbolic
// first dim ("batch").
func batchDim(inputs, outputs []dnx.ValueInfo) bool {
	name := ""
	for _, v := range slices.Concat(inputs, outputs) {
		if !v.Ranked || len(v.Shape) == 0 || v.Shape[0].Fixed() || v.Shape[0].Name == "" {
			return false
		}
		if name == "" {
			name = v.Shape[0].Name
		} else if v.Shape[0].Name != name {
			return false
		}
	}
	return name != ""
}

// repository is the set of models a server answers for, by name and version. It is fixed when
// the server is made; loading only fills in each version.
type repository struct {
	models map[string]*modelVersions
}

type modelVersions struct {
	// versions in ascending numeric order; the last is the default.
	versions []*servedModel
}

func newRepository(specs []ModelSpec) (*repository, error) {
	r := &repository{models: map[string]*modelVersions{}}
	for _, s := range specs {
		if err := checkModelName(s.Name); err != nil {
			return nil, err
		}
		if s.Version == "" {
			s.Version = "1"
		}
		mv := r.models[s.Name]
		if mv == nil {
			mv = &modelVersions{}
			r.models[s.Name] = mv
		}
		for _, v := range mv.versions {
			if v.version == s.Version {
				return nil, fmt.Errorf("model %s version %s is given twice (%s and %s)", s.Name, s.Version, v.path, s.Path)
			}
		}
		mv.versions = append(mv.versions, &servedModel{name: s.Name, version: s.Version, path: s.Path})
	}
	for _, mv := range r.models {
		slices.SortFunc(mv.versions, func(a, b *servedModel) int { return compareVersions(a.version, b.version) })
	}
	return r, nil
}

// compareVersions orders numeric versions numerically and others after them, by text.
func compareVersions(a, b string) int {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(x, y)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// lookup finds a model version; version "" is the latest. Unknown names and versions are 404s.
func (r *repository) lookup(name, version string) (*servedModel, error) {
	mv := r.models[name]
	if mv == nil {
		return nil, errorf(404, "unknown model %q", name)
	}
	if version == "" {
		return mv.versions[len(mv.versions)-1], nil
	}
	for _, v := range mv.versions {
		if v.version == version {
			return v, nil
		}
	}
	return nil, errorf(404, "model %q has no version %q", name, version)
}

// lookupReady is lookup for inference: a model that is not loaded yet is a 503.
func (r *repository) lookupReady(name, version string) (*servedModel, error) {
	m, err := r.lookup(name, version)
	if err != nil {
		return nil, err
	}
	if !m.ready.Load() {
		return nil, errorf(503, "model %q version %s is not ready", m.name, m.version)
	}
	return m, nil
}

// all returns every model version, sorted by name then version.
func (r *repository) all() []*servedModel {
	var out []*servedModel
	for _, name := range slices.Sorted(maps.Keys(r.models)) {
		out = append(out, r.models[name].versions...)
	}
	return out
}

// loadAll loads every model version, logging each, and stops at the first failure.
func (r *repository) loadAll(ctx context.Context, cfg *Config, met *metrics) error {
	for _, m := range r.all() {
		start := time.Now()
		if err := m.load(ctx, cfg, met); err != nil {
			return err
		}
		cfg.Logger.Info("model loaded", "model", m.name, "version", m.version, "path", m.path,
			"inputs", describe(m.inputs), "outputs", describe(m.outputs),
			"instances", len(m.sessions), "dynamic_batching", m.batchable && cfg.MaxBatch > 1,
			"load_ms", time.Since(start).Milliseconds())
	}
	return nil
}

func describe(vs []dnx.ValueInfo) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, ", ")
}

// closeAll stops every loaded model.
func (r *repository) closeAll() {
	for _, m := range r.all() {
		m.close()
	}
}
