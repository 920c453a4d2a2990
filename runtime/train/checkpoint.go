package train

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dnx-ml/dnx/internal/plural"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dnx-ml/dnx/onnx"
)

// CheckpointName is the file a checkpoint folder holds. There is one checkpoint per folder: each
// save replaces the previous one atomically, so an interrupted save leaves the last complete
// checkpoint in place.
const CheckpointName = "finetune.ckpt"

// checkpointMagic starts every checkpoint file; the digit is the format version.
const checkpointMagic = "DNXCKPT1"

// maxCheckpointMeta bounds the JSON header a reader accepts, so that a corrupt length field
// cannot allocate gigabytes.
const maxCheckpointMeta = 16 << 20

// ErrCheckpoint is wrapped by errors about checkpoint files that cannot be used (truncated,
// corrupt, not a checkpoint).
var ErrCheckpoint = errors.New("invalid checkpoint")

// Seeds are the seeds of a run's random choices outside the trainer (whose own seed is
// Options.Seed), recorded in its checkpoints so that a resumed run can check it draws the same.
type Seeds struct {
	Data  int64 `json:"data"`  // shuffling and augmentation
	Split int64 `json:"split"` // the held-out validation split
	Head  int64 `json:"head"`  // the initial weights of a replaced classifier
}

// CheckpointMeta is the JSON header of a checkpoint: where the run stands (FitState) and how it
// was set up. Together with the trainer state (weights, running statistics, optimizer buffers,
// step count) it is everything a resumed run needs to continue as if it had never stopped.
type CheckpointMeta struct {
	// Settings holds the run's result-determining settings by name (dnx finetune uses its flag
	// names); a resumed run should have the same ones. Fit records what it is given.
	Settings map[string]string `json:"settings"`
	// Seeds are the seeds of the run's data pipeline.
	Seeds Seeds `json:"seeds"`
	// FitState is the loop's position and running sums; its fields sit at the top level of the
	// JSON header, as they did when the header was the command line's own.
	FitState
}

// StateSaver is the part of a Trainer a checkpoint needs.
type StateSaver interface {
	SaveState(w io.Writer) error
}

// checkpointTempPrefix starts the name of the temporary file onnx.WriteFileAtomic writes a
// checkpoint to before renaming it into place: "." + CheckpointName + ".tmp-", then the decimal
// number os.CreateTemp draws. A process killed during a save leaves it behind.
const checkpointTempPrefix = "." + CheckpointName + ".tmp-"

// IsCheckpointTemp reports whether name is one of the temporary files a checkpoint save writes,
// and nothing else: the prefix followed by digits only.
func IsCheckpointTemp(name string) bool {
	rest, ok := strings.CutPrefix(name, checkpointTempPrefix)
	return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
}

// RemoveStaleTemps removes the temporary checkpoint files (IsCheckpointTemp, regular files only)
// that saves cut short left in dir, and returns their paths. A missing dir holds none.
//
// Two runs must not share a checkpoint folder, so a temporary file there at start belongs to a
// dead process.
func RemoveStaleTemps(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !IsCheckpointTemp(e.Name()) {
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

// CheckpointPath returns the checkpoint file in dir.
func CheckpointPath(dir string) string { return filepath.Join(dir, CheckpointName) }

// WriteCheckpoint saves meta and the trainer's state to dir's checkpoint, atomically (a crash
// or an interrupt during the write leaves the previous checkpoint intact). dir is created if
// needed.
//
// The file is: the magic "DNXCKPT1", the JSON header's length as a little-endian uint64, the
// header, the state's length likewise, the state (Trainer.SaveState), and the IEEE CRC-32 of
// everything before it, little-endian.
func WriteCheckpoint(dir string, meta CheckpointMeta, tr StateSaver) error {
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
	if err := onnx.WriteFileAtomic(CheckpointPath(dir), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// ReadCheckpoint reads dir's checkpoint: its header and the trainer state (for
// Trainer.LoadState). It returns an error wrapping fs.ErrNotExist when there is none, and one
// wrapping ErrCheckpoint, naming the file, when the file is not a complete checkpoint.
func ReadCheckpoint(dir string) (CheckpointMeta, []byte, error) {
	path := CheckpointPath(dir)
	data, err := os.ReadFile(path)
	if err != nil {
		return CheckpointMeta{}, nil, fmt.Errorf("checkpoint: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("checkpoint %s: %w: %s", path, ErrCheckpoint, fmt.Sprintf(format, args...))
	}
	if len(data) < len(checkpointMagic)+20 || string(data[:len(checkpointMagic)]) != checkpointMagic {
		return CheckpointMeta{}, nil, bad("not a dnx finetune checkpoint (no %q header)", checkpointMagic)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return CheckpointMeta{}, nil, bad("checksum mismatch (truncated or corrupt file)")
	}
	rest := body[len(checkpointMagic):]
	n := binary.LittleEndian.Uint64(rest)
	rest = rest[8:]
	if n > maxCheckpointMeta || n+8 > uint64(len(rest)) {
		return CheckpointMeta{}, nil, bad("header length %d does not fit the file", n)
	}
	var meta CheckpointMeta
	if err := json.Unmarshal(rest[:n], &meta); err != nil {
		return CheckpointMeta{}, nil, bad("header: %v", err)
	}
	rest = rest[n:]
	m := binary.LittleEndian.Uint64(rest)
	rest = rest[8:]
	if m != uint64(len(rest)) {
		return CheckpointMeta{}, nil, bad("trainer state is %s, the header says %d", plural.Count(len(rest), "byte"), m)
	}
	if meta.Epoch < 0 || meta.Batch < 0 || meta.Step < 0 {
		return CheckpointMeta{}, nil, bad("negative position (epoch %d, batch %d, step %d)", meta.Epoch, meta.Batch, meta.Step)
	}
	return meta, rest, nil
}

// LoadCheckpoint reads dir's checkpoint and restores its trainer state into tr: the start of a
// resumed run, whose FitConfig.Start is the returned meta's FitState. The checks that decide
// whether the run may resume (same settings, same seeds) are the caller's. When the file cannot
// be read or its state does not fit tr, tr is unchanged.
func LoadCheckpoint(dir string, tr *Trainer) (CheckpointMeta, error) {
	meta, state, err := ReadCheckpoint(dir)
	if err != nil {
		return CheckpointMeta{}, err
	}
	if err := tr.LoadState(bytes.NewReader(state)); err != nil {
		return CheckpointMeta{}, fmt.Errorf("%s: %w", CheckpointPath(dir), err)
	}
	if n := tr.StepCount(); n != meta.Step {
		return CheckpointMeta{}, fmt.Errorf("%s: %w: the trainer state has %s, the header %d", CheckpointPath(dir), ErrCheckpoint, plural.Count(n, "step"), meta.Step)
	}
	return meta, nil
}
