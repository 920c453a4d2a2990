package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/dnx-ml/dnx/runtime/train"
)

// The checkpoint file (format, atomic saves, temporary files) is runtime/train's
// (train.WriteCheckpoint, train.ReadCheckpoint): the library's loop, train.Fit, saves it. What
// stays here is the command's side: the folder's checks before a run and the comparison of
// settings on --resume, whose messages name flags.

// prepareCheckpointDir readies the --checkpoint folder dir ("" for none) before a run. A
// checkpoint already there belongs to another run: a run without --resume (which continues it)
// refuses to replace it unless overwrite. Temporary files of saves cut short are removed, each
// named on stderr.
func prepareCheckpointDir(dir string, resume, overwrite bool, stderr io.Writer) error {
	if dir == "" {
		return nil
	}
	if _, err := os.Stat(train.CheckpointPath(dir)); err == nil && !resume && !overwrite {
		return usagef("finetune: --checkpoint %s already holds a run's checkpoint (%s): continue that run with --resume, or start afresh with --overwrite",
			dir, train.CheckpointPath(dir))
	}
	removed, err := train.RemoveStaleTemps(dir)
	for _, path := range removed {
		fmt.Fprintf(stderr, "finetune: removed %s, left by a checkpoint save that was cut short\n", path)
	}
	if err != nil {
		return fmt.Errorf("finetune: --checkpoint %s: removing stale temporary files: %w", dir, err)
	}
	return nil
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
