package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// fileArg is a file or folder named on the command line, with the flag that names it ("" for a
// positional argument such as MODEL).
type fileArg struct {
	flag string
	path string
	// dir marks a folder: an input read as a whole (--data DIR), or an output folder that is
	// created when missing (--checkpoint DIR, --output-dir DIR).
	dir bool
	// files lists, for an output folder, the names of the files the command writes in it: they
	// must not be inputs.
	files []string
	// inPlace marks an output file written where it is instead of replaced atomically (the
	// finetune log, appended to on --resume): an existing one must itself be writable.
	inPlace bool
}

// String names the argument in messages: "--input x.npy", or the path alone for a positional one.
func (a fileArg) String() string {
	if a.flag == "" {
		return a.path
	}
	return a.flag + " " + a.path
}

// written returns the files an output writes: its path, or for a folder the files in it.
func (a fileArg) written() []fileArg {
	if !a.dir {
		return []fileArg{a}
	}
	out := make([]fileArg, len(a.files))
	for i, f := range a.files {
		out[i] = fileArg{flag: a.flag, path: filepath.Join(a.path, f)}
	}
	return out
}

// checkFiles checks, before a command does any work, the files it will read (inputs) and write
// (outputs), so that a mistake costs nothing and destroys nothing:
//
//   - every input exists and is a regular file (a folder where dir is set);
//   - every output can be written: not a folder (a folder where dir is set), in an existing
//     folder (an output folder may be created) that takes new files;
//   - no output is an input, or lies inside an input folder, or is another output (see
//     checkConflicts).
//
// Arguments with an empty path are skipped. Errors are one line naming the flags and paths, and
// are not usage errors: the file system refuses the command line, not its syntax (status 1).
func checkFiles(cmd string, inputs, outputs []fileArg) error {
	for _, in := range inputs {
		if err := checkInputFile(cmd, in); err != nil {
			return err
		}
	}
	for _, out := range outputs {
		if err := checkOutputFile(cmd, out); err != nil {
			return err
		}
	}
	return checkConflicts(cmd, inputs, outputs)
}

// checkConflicts refuses an output that would overwrite an input (the same file after symlinks
// and hard links: os.SameFile), write into an input folder (a data set would then include it),
// or overwrite another output. It looks at the file system but changes nothing; commands call
// it again when they learn of more files (the external data of a model, the files of
// --output-dir).
func checkConflicts(cmd string, inputs, outputs []fileArg) error {
	var written []fileArg
	for _, out := range outputs {
		if out.path != "" {
			written = append(written, out.written()...)
		}
	}
	for i, w := range written {
		for _, in := range inputs {
			switch {
			case in.path == "":
			case in.dir && isWithin(w.path, in.path):
				return fmt.Errorf("%s: refusing to write into an input folder: %s is inside %s (write the output elsewhere)", cmd, w, in)
			case !in.dir && sameFile(w.path, in.path):
				return fmt.Errorf("%s: refusing to overwrite an input: %s is %s (write the output elsewhere)", cmd, w, in)
			}
		}
		for _, o := range written[:i] {
			if sameFile(w.path, o.path) {
				return fmt.Errorf("%s: %s and %s name the same file (give each output its own)", cmd, o, w)
			}
		}
	}
	return nil
}

// checkInputFile checks that an input exists and is a regular file, or a folder when a.dir.
func checkInputFile(cmd string, a fileArg) error {
	if a.path == "" {
		return nil
	}
	st, err := os.Stat(a.path)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %s: %w", cmd, a, pathErrorCause(err))
	case a.dir && !st.IsDir():
		return fmt.Errorf("%s: %s is a file; want a folder", cmd, a)
	case a.dir:
		return nil
	case st.IsDir():
		return fmt.Errorf("%s: %s is a folder; want a file", cmd, a)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s: %s is not a regular file (a device, pipe or socket)", cmd, a)
	}
	return nil
}

// checkOutputFile checks that an output can be written: a file output's folder exists and takes
// new files and the path is not a folder; an output folder exists or can be created (its nearest
// existing ancestor is a folder) and takes new files. Nothing is left behind.
func checkOutputFile(cmd string, a fileArg) error {
	if a.path == "" {
		return nil
	}
	if a.dir {
		return checkDirOutput(cmd, a)
	}
	if st, err := os.Stat(a.path); err == nil {
		if st.IsDir() {
			return fmt.Errorf("%s: %s is a folder; give a file name", cmd, a)
		}
		if a.inPlace {
			f, err := os.OpenFile(a.path, os.O_WRONLY, 0)
			if err != nil {
				return fmt.Errorf("%s: %s: cannot write it: %w", cmd, a, pathErrorCause(err))
			}
			f.Close()
		}
	}
	dir := filepath.Dir(a.path)
	st, err := os.Stat(dir)
	switch {
	case missing(err):
		return fmt.Errorf("%s: %s: folder %s does not exist", cmd, a, dir)
	case err != nil:
		return fmt.Errorf("%s: %s: %w", cmd, a, pathErrorCause(err))
	case !st.IsDir():
		return fmt.Errorf("%s: %s: %s is not a folder", cmd, a, dir)
	}
	return probeWrite(cmd, a, dir)
}

// checkDirOutput checks that the output folder a.path exists or can be created (its nearest
// existing ancestor is a folder) and takes new files. Nothing is created.
func checkDirOutput(cmd string, a fileArg) error {
	for p := a.path; ; {
		st, err := os.Stat(p)
		switch {
		case err == nil && st.IsDir():
			return probeWrite(cmd, a, p)
		case err == nil && p == a.path:
			return fmt.Errorf("%s: %s is a file, not a folder", cmd, a)
		case err == nil:
			return fmt.Errorf("%s: %s cannot be created: %s is a file", cmd, a, p)
		case !missing(err):
			return fmt.Errorf("%s: %s: %w", cmd, a, pathErrorCause(err))
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("%s: %s: no folder on its path exists", cmd, a)
		}
		p = parent
	}
}

// probeWrite checks that dir takes new files by creating and removing an empty hidden one: the
// permission bits alone do not say (root, read-only mounts, ACLs).
func probeWrite(cmd string, a fileArg, dir string) error {
	f, err := os.CreateTemp(dir, ".dnx-write-test-*")
	if err != nil {
		return fmt.Errorf("%s: %s: cannot create files in %s: %w", cmd, a, dir, pathErrorCause(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// sameFile reports whether paths a and b name the same file: os.SameFile when both exist (which
// sees through symlinks and hard links), else equal canonical paths (canonicalPath), which is
// what two files not yet created would collide on.
func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	return canonicalPath(a) == canonicalPath(b)
}

// canonicalPath returns the absolute, cleaned path of p with the symlinks of its folder resolved:
// the path of the file that creating p would make (onnx.WriteFileAtomic replaces a symlink at p
// itself rather than following it, so p's own base name is kept). A folder that cannot be
// resolved (it does not exist) is left as it is.
func canonicalPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	dir, base := filepath.Split(abs)
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	return filepath.Join(dir, base)
}

// isWithin reports whether path p lies inside folder dir (at any depth, or is dir itself), after
// symlinks are resolved.
func isWithin(p, dir string) bool {
	d, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	if d, err = filepath.Abs(d); err != nil {
		return false
	}
	// Resolve as much of p as exists: its folder may be a symlink into dir.
	c := canonicalPath(p)
	if r, err := filepath.EvalSymlinks(c); err == nil {
		c = r
	}
	rel, err := filepath.Rel(d, c)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// missing reports whether a stat error says the path does not exist: no such file, or a path
// component that is a file.
func missing(err error) bool { return isNotExist(err) || errors.Is(err, syscall.ENOTDIR) }

// pathErrorCause strips the operation and path of an *fs.PathError, which messages name anyway.
func pathErrorCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
