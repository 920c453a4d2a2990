package train

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stateBytes is a StateSaver writing fixed bytes.
type stateBytes string

func (s stateBytes) SaveState(w io.Writer) error {
	_, err := w.Write([]byte(s))
	return err
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x40
	return c
}

func TestCheckpointFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ck")
	first := 1.75
	meta := CheckpointMeta{Settings: map[string]string{"lr": "0.1"}, Seeds: Seeds{Data: 1, Split: 2, Head: 3},
		FitState: FitState{Epoch: 2, Batch: 5, Step: 25, Running: EpochSums{LossSum: 1.5, Correct: 3, Images: 10}, TrainSeconds: 1.25, FirstLoss: &first}}
	state := stateBytes("trainer state \x00\x01\x02")
	if err := WriteCheckpoint(dir, meta, state); err != nil {
		t.Fatal(err)
	}
	got, gotState, err := ReadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(gotState) != string(state) || got.Step != 25 || got.Epoch != 2 || got.Batch != 5 || got.Seeds != meta.Seeds ||
		got.Running != meta.Running || got.Settings["lr"] != "0.1" || got.TrainSeconds != 1.25 || got.FirstLoss == nil || *got.FirstLoss != first {
		t.Errorf("read back %+v, %q", got, gotState)
	}
	// Every truncation and every flipped byte is detected.
	data, err := os.ReadFile(CheckpointPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{data[:len(data)-1], data[:10], append([]byte("XNXCKPT1"), data[8:]...), flip(data, 20), flip(data, len(data)-6)} {
		if err := os.WriteFile(CheckpointPath(dir), bad, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ReadCheckpoint(dir); !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), CheckpointName) {
			t.Errorf("corrupt checkpoint (%d bytes) read without a proper error: %v", len(bad), err)
		}
	}
	if _, _, err := ReadCheckpoint(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing checkpoint: %v", err)
	}
}

// TestCheckpointHeaderFormat pins the JSON header's field names: checkpoints written before the
// loop moved out of the command line must still resume.
func TestCheckpointHeaderFormat(t *testing.T) {
	dir := t.TempDir()
	header := `{"settings":{"lr":"0.1"},"seeds":{"data":7,"split":8,"head":9},"epoch":1,"batch":2,"step":5,` +
		`"running":{"loss_sum":3,"correct":2,"images":4},"last_epoch":{"loss_sum":6,"correct":1,"images":8},` +
		`"last_val":{"loss":0.5,"acc":0.25,"images":4},"train_seconds":2.5,"activation_bytes":1024,"skipped":["a.png"]}`
	if err := WriteCheckpoint(dir, CheckpointMeta{}, stateBytes("")); err != nil {
		t.Fatal(err)
	}
	// Rebuild the file around the old header, as the command line wrote it.
	raw := []byte(checkpointMagic)
	raw = appendLE64(raw, uint64(len(header)))
	raw = append(raw, header...)
	raw = appendLE64(raw, 3)
	raw = append(raw, "abc"...)
	raw = appendCRC(raw)
	if err := os.WriteFile(CheckpointPath(dir), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	got, state, err := ReadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := FitState{Epoch: 1, Batch: 2, Step: 5, Running: EpochSums{3, 2, 4}, TrainSeconds: 2.5, ActivationBytes: 1024}
	if string(state) != "abc" || got.Seeds != (Seeds{7, 8, 9}) || got.Epoch != want.Epoch || got.Batch != want.Batch || got.Step != want.Step ||
		got.Running != want.Running || got.LastEpoch == nil || *got.LastEpoch != (EpochSums{6, 1, 8}) || got.LastVal == nil ||
		*got.LastVal != (ValResult{0.5, 0.25, 4}) || got.TrainSeconds != 2.5 || got.ActivationBytes != 1024 ||
		got.FirstLoss != nil || len(got.Skipped) != 1 || got.Settings["lr"] != "0.1" {
		t.Errorf("old header read as %+v", got)
	}
}

func TestIsCheckpointTemp(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{".finetune.ckpt.tmp-123", true},
		{".finetune.ckpt.tmp-", false},
		{".finetune.ckpt.tmp-12a", false},
		{"finetune.ckpt", false},
		{".other.tmp-1", false},
	} {
		if got := IsCheckpointTemp(tc.name); got != tc.want {
			t.Errorf("IsCheckpointTemp(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func appendLE64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

func appendCRC(b []byte) []byte { return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b)) }
