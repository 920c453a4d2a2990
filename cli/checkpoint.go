package cli

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dnx-ml/dnx/onnx"
)

// checkpointName is the file `dnx finetune --checkpoint DIR` keeps in DIR. There is one
// checkpoint per folder: each save replaces the previous one atomically, so an interrupted save
// leaves the last complete checkpoint in place.
const checkpointName = "finetune.ckpt"

// checkpointMagic starts every checkpoint file; the digit is the format version.
const checkpointMagic = "DNXCKPT1"

// maxCheckpointMeta bounds the JSON header a reader accepts, so that a corrupt length field
// cannot allocate gigabytes.
const maxCheckpointMeta = 16 << 20

// errCheckpoint is wrapped by errors about checkpoint files that cannot be used.
var errCheckpoint = errors.New("invalid checkpoint")

// checkpointMeta is the JSON header of a checkpoint: where the run stands and how it was set up.
// Together with the trainer state (weights, running statistics, optimizer buffers, step count)
// it is everything a resumed run needs to continue as if it had never stopped.
type checkpointMeta struct {
	// Settings holds the command's result-determining settings by flag name (see
	// finetuneConfig.settings); a resumed run must have the same ones.
	Settings map[string]string `json:"settings"`
	// Seeds are the random seeds the run derives from --seed.
	Seeds runSeeds `json:"seeds"`
	// Epoch is the epoch in progress, counted from 0, and Batch the number of its batches
	// already trained: the data loader resumes at batch Batch of epoch Epoch.
	Epoch int `json:"epoch"`
	Batch int `json:"batch"`
	// Step is the number of optimizer steps taken so far.
	Step int `json:"step"`
	// Running holds the sums behind the progress line's running means for the epoch in progress.
	Running epochSums `json:"running"`
	// LastEpoch holds the sums of the last completed epoch, for the final summary.
	LastEpoch *epochSums `json:"last_epoch,omitempty"`
	// LastVal is the last validation result, if any.
	LastVal *valResult `json:"last_val,omitempty"`
	// TrainSeconds is the training time spent so far (steps only, across resumes).
	TrainSeconds float64 `json:"train_seconds"`
	// ActivationBytes is the largest activation memory of a step so far.
	ActivationBytes int64 `json:"activation_bytes"`
	// FirstLoss is the loss of the run's first step, the reference of the divergence check (see
	// explosionFactor); nil before the first step, and in checkpoints written before it was kept.
	FirstLoss *float64 `json:"first_loss,omitempty"`
	// Skipped lists the image files left out of batches so far because they could not be
	// decoded (found mid-epoch: the ones whose header is unreadable are found at every start).
	Skipped []string `json:"skipped,omitempty"`
}

// runSeeds are the seeds of the run's random choices.
type runSeeds struct {
	Data  int64 `json:"data"`  // shuffling and augmentation
	Split int64 `json:"split"` // --val-split
	Head  int64 `json:"head"`  // --classes: the new classifier's initial weights
}

// epochSums accumulates the training loss and accuracy of an epoch.
type epochSums struct {
	LossSum float64 `json:"loss_sum"` // sum over batches of batch size x batch mean loss
	Correct int64   `json:"correct"`
	Images  int64   `json:"images"`
}

// add records one batch of n images with mean loss loss and correct right answers.
func (s *epochSums) add(n int, loss float64, correct int64) {
	s.LossSum += loss * float64(n)
	s.Correct += correct
	s.Images += int64(n)
}

// loss returns the mean loss per image (NaN before any image).
func (s epochSums) loss() float64 { return s.LossSum / float64(s.Images) }

// acc returns the fraction of correct answers (NaN before any image).
func (s epochSums) acc() float64 { return float64(s.Correct) / float64(s.Images) }

// stateSaver is the part of the trainer a checkpoint needs.
type stateSaver interface {
	SaveState(w io.Writer) error
}

// checkpointTempPrefix starts the name of the temporary file onnx.WriteFileAtomic writes a
// checkpoint to before renaming it into place: "." + checkpointName + ".tmp-", then the decimal
// number os.CreateTemp draws. A process killed during a save leaves it behind.
const checkpointTempPrefix = "." + checkpointName + ".tmp-"

// isCheckpointTemp reports whether name is one of our temporary checkpoint files, and nothing
// else: the prefix followed by digits only.
func isCheckpointTemp(name string) bool {
	rest, ok := strings.CutPrefix(name, checkpointTempPrefix)
	return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
}

// removeStaleTemps removes the temporary checkpoint files (isCheckpointTemp, regular files only)
// that saves cut short left in dir, and returns their paths. A missing dir holds none.
//
// Two runs must not share a checkpoint folder (prepareCheckpointDir refuses a second fresh run),
// so a temporary file there at start belongs to a dead process.
func removeStaleTemps(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !isCheckpointTemp(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err != nil {
			return removed, err
		}
		removed = append(removed, path)
	}
	return removed, nil
}

// prepareCheckpointDir readies the --checkpoint folder dir ("" for none) before a run. A
// checkpoint already there belongs to another run: a run without --resume (which continues it)
// refuses to replace it unless overwrite. Temporary files of saves cut short are removed, each
// named on stderr.
func prepareCheckpointDir(dir string, resume, overwrite bool, stderr io.Writer) error {
	if dir == "" {
		return nil
	}
	if _, err := os.Stat(checkpointPath(dir)); err == nil && !resume && !overwrite {
		return usagef("finetune: --checkpoint %s already holds a run's checkpoint (%s): continue that run with --resume, or start afresh with --overwrite",
			dir, checkpointPath(dir))
	}
	removed, err := removeStaleTemps(dir)
	for _, path := range removed {
		fmt.Fprintf(stderr, "finetune: removed %s, left by a checkpoint save that was cut short\n", path)
	}
	if err != nil {
		return fmt.Errorf("finetune: --checkpoint %s: removing stale temporary files: %w", dir, err)
	}
	return nil
}

// checkpointPath returns the checkpoint file in dir.
func checkpointPath(dir string) string { return filepath.Join(dir, checkpointName) }

// writeCheckpoint saves meta and the trainer's state to dir's checkpoint, atomically (a crash
// or an interrupt during the write leaves the previous checkpoint intact). dir is created if
// needed.
//
// The file is: the magic "DNXCKPT1", the JSON header's length as a little-endian uint64, the
// header, the state's length likewise, the state (Trainer.SaveState), and the IEEE CRC-32 of
// everything before it, little-endian.
func writeCheckpoint(dir string, meta checkpointMeta, tr stateSaver) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	header, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("checkpoint: encode: %w", err)
	}
	var state bytes.Buffer
	if err := tr.SaveState(&state); err != nil {
		return fmt.Errorf("checkpoint: save trainer state: %w", err)
	}
	var buf bytes.Buffer
	buf.Grow(len(checkpointMagic) + 20 + len(header) + state.Len())
	buf.WriteString(checkpointMagic)
	buf.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(header))))
	buf.Write(header)
	buf.Write(binary.LittleEndian.AppendUint64(nil, uint64(state.Len())))
	buf.Write(state.Bytes())
	buf.Write(binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(buf.Bytes())))
	if err := onnx.WriteFileAtomic(checkpointPath(dir), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// readCheckpoint reads dir's checkpoint. It returns an error wrapping fs.ErrNotExist when there
// is none, and one wrapping errCheckpoint, naming the file, when the file is not a complete
// checkpoint.
func readCheckpoint(dir string) (checkpointMeta, []byte, error) {
	path := checkpointPath(dir)
	data, err := os.ReadFile(path)
	if err != nil {
		return checkpointMeta{}, nil, fmt.Errorf("checkpoint: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("checkpoint %s: %w: %s", path, errCheckpoint, fmt.Sprintf(format, args...))
	}
	if len(data) < len(checkpointMagic)+20 || string(data[:len(checkpointMagic)]) != checkpointMagic {
		return checkpointMeta{}, nil, bad("not a dnx finetune checkpoint (no %q header)", checkpointMagic)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return checkpointMeta{}, nil, bad("checksum mismatch (truncated or corrupt file)")
	}
	rest := body[len(checkpointMagic):]
	n := binary.LittleEndian.Uint64(rest)
	rest = rest[8:]
	if n > maxCheckpointMeta || n+8 > uint64(len(rest)) {
		return checkpointMeta{}, nil, bad("header length %d does not fit the file", n)
	}
	var meta checkpointMeta
	if err := json.Unmarshal(rest[:n], &meta); err != nil {
		return checkpointMeta{}, nil, bad("header: %v", err)
	}
	rest = rest[n:]
	m := binary.LittleEndian.Uint64(rest)
	rest = rest[8:]
	if m != uint64(len(rest)) {
		return checkpointMeta{}, nil, bad("trainer state is %s, the header says %d", plural(len(rest), "byte"), m)
	}
	if meta.Epoch < 0 || meta.Batch < 0 || meta.Step < 0 {
		return checkpointMeta{}, nil, bad("negative position (epoch %d, batch %d, step %d)", meta.Epoch, meta.Batch, meta.Step)
	}
	return meta, rest, nil
}

// settingsDiff lists the settings that differ between a checkpoint (old) and the current command
// (cur), as "--name old -> new", ignoring the names in free. An empty result means the run can
// continue from the checkpoint.
func settingsDiff(old, cur map[string]string, free map[string]bool) []string {
	names := map[string]bool{}
	for k := range old {
		names[k] = true
	}
	for k := range cur {
		names[k] = true
	}
	var diffs []string
	for k := range names {
		if free[k] {
			continue
		}
		o, okO := old[k]
		c, okC := cur[k]
		if okO && okC && o == c {
			continue
		}
		diffs = append(diffs, fmt.Sprintf("--%s %s -> %s", k, settingText(o, okO), settingText(c, okC)))
	}
	sort.Strings(diffs)
	return diffs
}

// settingText shows a setting's value in settingsDiff, quoting empty or absent ones.
func settingText(v string, ok bool) string {
	switch {
	case !ok:
		return "(unset)"
	case v == "":
		return `""`
	case strings.ContainsAny(v, " \t"):
		return fmt.Sprintf("%q", v)
	}
	return v
}

// isNotExist reports whether err says a file does not exist.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
