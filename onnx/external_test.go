package onnx

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/dnx-ml/dnx/onnx/onnxpb"
	"github.com/dnx-ml/dnx/runtime/tensor"
)

// extTensor returns a float32 tensor proto of the given dims stored externally with the given
// key/value pairs.
func extTensor(dims []int64, kv ...string) *onnxpb.TensorProto {
	p := tp("ext", tensor.Float32, dims...)
	p.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	for i := 0; i+1 < len(kv); i += 2 {
		p.ExternalData = append(p.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String(kv[i]), Value: proto.String(kv[i+1])})
	}
	return p
}

// externalDir builds a model directory holding weights.bin (the float32 values 1..6 after an
// 8-byte header), a subdirectory with a copy, an inside symlink, and an outside file reachable
// only through a symlink.
func externalDir(t *testing.T) (dir string, want *tensor.Tensor) {
	t.Helper()
	root := t.TempDir()
	dir = filepath.Join(root, "model")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	want = tensor.FromSlice(tensor.Shape{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	p, err := EncodeTensor(want, "w")
	if err != nil {
		t.Fatal(err)
	}
	data := append([]byte("HEADER!!"), p.GetRawData()...)
	for _, f := range []string{filepath.Join(dir, "weights.bin"), filepath.Join(dir, "sub", "w.bin"), filepath.Join(root, "outside.bin")} {
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("weights.bin", filepath.Join(dir, "link.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "outside.bin"), filepath.Join(dir, "escape.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, filepath.Join(dir, "up")); err != nil {
		t.Fatal(err)
	}
	return dir, want
}

// TestExternalData reads tensors stored in a file next to the model, and refuses every location
// or range that is unsafe or inconsistent.
func TestExternalData(t *testing.T) {
	dir, want := externalDir(t)
	dims := []int64{2, 3}
	n := strconv.Itoa(24)
	ok := []struct {
		name string
		in   *onnxpb.TensorProto
	}{
		{"offset and length", extTensor(dims, "location", "weights.bin", "offset", "8", "length", n)},
		{"no length reads to the end", extTensor(dims, "location", "weights.bin", "offset", "8")},
		{"subdirectory", extTensor(dims, "location", "sub/w.bin", "offset", "8", "length", n, "checksum", "ignored")},
		{"dot segments that stay inside", extTensor(dims, "location", "sub/../weights.bin", "offset", "8")},
		{"symlink inside the directory", extTensor(dims, "location", "link.bin", "offset", "8")},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeTensor(tc.in, dir)
			if err != nil {
				t.Fatal(err)
			}
			if !bitsEqual(got, want) {
				t.Fatalf("got %v, want %v", got.Data, want.Data)
			}
		})
	}

	abs := filepath.Join(dir, "weights.bin")
	bad := []struct {
		name    string
		in      *onnxpb.TensorProto
		baseDir string
		want    error
	}{
		{"no base directory", extTensor(dims, "location", "weights.bin", "offset", "8"), "", ErrExternalData},
		{"absolute path", extTensor(dims, "location", abs, "offset", "8"), dir, ErrExternalData},
		{"dot-dot escape", extTensor(dims, "location", "../model/weights.bin", "offset", "8"), dir, ErrExternalData},
		{"deep dot-dot escape", extTensor(dims, "location", "sub/../../outside.bin", "offset", "8"), dir, ErrExternalData},
		{"symlinked file outside", extTensor(dims, "location", "escape.bin", "offset", "8"), dir, ErrExternalData},
		{"symlinked directory outside", extTensor(dims, "location", "up/outside.bin", "offset", "8"), dir, ErrExternalData},
		{"missing file", extTensor(dims, "location", "nope.bin"), dir, ErrExternalData},
		{"directory", extTensor(dims, "location", "sub"), dir, ErrExternalData},
		{"no location", extTensor(dims, "offset", "8"), dir, ErrExternalData},
		{"empty location", extTensor(dims, "location", ""), dir, ErrExternalData},
		{"offset beyond EOF", extTensor(dims, "location", "weights.bin", "offset", "1000"), dir, ErrExternalData},
		{"length beyond EOF", extTensor(dims, "location", "weights.bin", "offset", "8", "length", "1000000000000"), dir, ErrExternalData},
		{"length mismatch", extTensor(dims, "location", "weights.bin", "offset", "8", "length", "20"), dir, ErrExternalData},
		{"rest of file mismatch", extTensor(dims, "location", "weights.bin"), dir, ErrExternalData},
		{"dims larger than file", extTensor([]int64{1 << 20}, "location", "weights.bin"), dir, ErrExternalData},
		{"negative offset", extTensor(dims, "location", "weights.bin", "offset", "-8"), dir, ErrExternalData},
		{"garbage length", extTensor(dims, "location", "weights.bin", "length", "24 bytes"), dir, ErrExternalData},
		{"duplicate key", extTensor(dims, "location", "weights.bin", "location", "sub/w.bin"), dir, ErrExternalData},
		{"string tensor", with(extTensor([]int64{1}, "location", "weights.bin"), func(p *onnxpb.TensorProto) { p.DataType = proto.Int32(int32(tensor.String)) }), dir, ErrExternalData},
		{"inline data too", with(extTensor(dims, "location", "weights.bin", "offset", "8"), func(p *onnxpb.TensorProto) { p.RawData = make([]byte, 24) }), dir, ErrCorrupt},
		{"huge dims", extTensor([]int64{1 << 40, 1 << 40}, "location", "weights.bin"), dir, tensor.ErrShape},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeTensor(tc.in, tc.baseDir)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want one wrapping %v", err, tc.want)
			}
		})
	}
}

// TestExternalDataReadTensorFile checks that ReadTensorFile resolves external data relative to
// the tensor file's own directory.
func TestExternalDataReadTensorFile(t *testing.T) {
	dir, want := externalDir(t)
	path := filepath.Join(dir, "t.pb")
	if err := WriteFileAtomic(path, mustMarshal(t, extTensor([]int64{2, 3}, "location", "weights.bin", "offset", "8")), 0o644); err != nil {
		t.Fatal(err)
	}
	got, name, err := ReadTensorFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if name != "ext" || !bitsEqual(got, want) {
		t.Fatalf("got %q %v, want %q %v", name, got.Data, "ext", want.Data)
	}
}

// TestExternalDataSpecialFiles refuses locations inside the model directory that are not regular
// files, checking each before opening it. Opening a FIFO blocks until a writer appears, so every
// read runs under a deadline: without the check the test fails instead of hanging. The error is
// one line naming the tensor file, the tensor and the location.
func TestExternalDataSpecialFiles(t *testing.T) {
	dir, _ := externalDir(t)
	fifo := filepath.Join(dir, "pipe.bin")
	fifoErr := makeFIFO(fifo)
	if fifoErr == nil {
		if err := os.Symlink("pipe.bin", filepath.Join(dir, "pipe-link.bin")); err != nil {
			t.Fatal(err)
		}
	}
	l, sockErr := net.Listen("unix", filepath.Join(dir, "sock.bin"))
	if sockErr == nil {
		defer l.Close()
	}
	_, devErr := os.Stat("/dev/zero")
	if devErr == nil {
		if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.bin")); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name string
		loc  string
		want string // the end of the message, less the model directory where it is named
		skip error  // non-nil: the file could not be made here
	}{
		{"fifo", "pipe.bin", `location "pipe.bin" is a named pipe (FIFO), not a regular file`, fifoErr},
		{"symlink to a fifo inside", "pipe-link.bin", `location "pipe-link.bin" is a named pipe (FIFO), not a regular file`, fifoErr},
		{"directory", "sub", `location "sub" is a directory, not a regular file`, nil},
		{"socket", "sock.bin", `location "sock.bin" is a socket, not a regular file`, sockErr},
		{"device through a symlink", "zero.bin", `location "zero.bin" resolves to /dev/zero, outside the model directory`, devErr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != nil {
				t.Skipf("cannot make the file here: %v", tc.skip)
			}
			path := filepath.Join(dir, "t-"+strings.ReplaceAll(tc.name, " ", "-")+".pb")
			if err := WriteFileAtomic(path, mustMarshal(t, extTensor([]int64{2, 3}, "location", tc.loc)), 0o644); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, _, err := ReadTensorFile(path)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				// Release the blocked Open: a read-write open of the FIFO does not block and
				// counts as a writer.
				if w, werr := os.OpenFile(fifo, os.O_RDWR, 0); werr == nil {
					w.Close()
				}
				t.Fatalf("reading %s did not return within 5 s (opened a special file?)", tc.loc)
			}
			want := "read tensor " + path + `: tensor "ext": ` + ErrExternalData.Error() + ": " + tc.want
			if !errors.Is(err, ErrExternalData) || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v\nwant %s", err, want)
			}
		})
	}
}

// makeFIFO creates a named pipe with the mkfifo command, which keeps this file free of
// unix-only syscalls so that it builds everywhere.
func makeFIFO(path string) error {
	if runtime.GOOS == "windows" {
		return errors.New("no FIFOs on windows")
	}
	mkfifo, err := exec.LookPath("mkfifo")
	if err != nil {
		return err
	}
	if out, err := exec.Command(mkfifo, path).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfifo: %w: %s", err, out)
	}
	return nil
}
