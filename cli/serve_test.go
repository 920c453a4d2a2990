package cli

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestServeCommandLine checks dnx serve's command-line errors: status 2 before any file is
// read for a wrong command line, status 1 for a model file that is not there or not a model.
func TestServeCommandLine(t *testing.T) {
	model := filepath.Join(tiny(t), "model.onnx")
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.onnx")
	if err := os.WriteFile(garbage, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	off := []string{"--http", "127.0.0.1:0", "--grpc", "off", "--metrics", "off"}
	tests := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"no model", []string{"serve"}, 2, []string{"missing MODEL"}},
		{"models and repository", []string{"serve", model, "--model-repository", dir}, 2, []string{"not both"}},
		{"bad name", []string{"serve", "a/b=" + model}, 2, []string{`model name "a/b"`}},
		{"bad --max-batch", []string{"serve", model, "--max-batch", "0"}, 2, []string{"--max-batch 0"}},
		{"bad --preferred-batch", []string{"serve", model, "--max-batch", "4", "--preferred-batch", "5"}, 2, []string{"--preferred-batch 5"}},
		{"bad --instances", []string{"serve", model, "--instances", "0"}, 2, []string{"--instances 0"}},
		{"bad --max-queue", []string{"serve", model, "--max-queue", "-1"}, 2, []string{"--max-queue -1"}},
		{"bad --max-queue-delay", []string{"serve", model, "--max-queue-delay", "-1ms"}, 2, []string{"--max-queue-delay"}},
		{"bad --max-request-bytes", []string{"serve", model, "--max-request-bytes", "lots"}, 2, []string{"--max-request-bytes"}},
		{"bad --request-timeout", []string{"serve", model, "--request-timeout", "-1s"}, 2, []string{"--request-timeout"}},
		{"bad --threads", []string{"serve", model, "--threads", "-2"}, 2, []string{"--threads -2"}},
		{"bad --http", []string{"serve", model, "--http", "8000"}, 2, []string{`--http "8000"`}},
		{"all off", []string{"serve", model, "--http", "off", "--grpc", "off", "--metrics", "off"}, 2, []string{"nothing to serve on"}},
		{"bad --log-format", []string{"serve", model, "--log-format", "xml"}, 2, []string{"--log-format"}},
		{"bad --log-level", []string{"serve", model, "--log-level", "loud"}, 2, []string{"--log-level"}},
		{"missing model", append([]string{"serve", filepath.Join(dir, "nope.onnx")}, off...), 1, []string{"nope.onnx"}},
		{"empty repository", append([]string{"serve", "--model-repository", dir}, off...), 1, []string{"no DIR/NAME/VERSION/model.onnx"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, status := dnx(t, tc.args...)
			if status != tc.status {
				t.Errorf("status %d, want %d (stderr %q)", status, tc.status, stderr)
			}
			checkOneLine(t, stderr, tc.want...)
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
		})
	}
	// A file that is no model fails while loading, after the listeners started (their log lines
	// precede the error): status 1, the last line naming the file.
	var o, e bytes.Buffer
	status := Run(context.Background(), append([]string{"dnx", "serve", garbage}, off...), &o, &e)
	if status != 1 || !regexp.MustCompile(`(?m)^dnx: .*garbage\.onnx.*\n$`).MatchString(e.String()) {
		t.Errorf("garbage model: status %d, stderr %q", status, e.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the server's log writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeSIGTERM runs dnx serve, waits until it is ready, cancels it as SIGTERM does, and
// checks that it stopped cleanly with status 0.
func TestServeSIGTERM(t *testing.T) {
	model := filepath.Join(tiny(t), "model.onnx")
	ctx, cancel := context.WithCancelCause(context.Background())
	var stdout, stderr syncBuffer
	status := make(chan int, 1)
	go func() {
		status <- Run(ctx, []string{"dnx", "serve", "tiny=" + model, "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--metrics", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	addr := regexp.MustCompile(`msg=listening protocol=http addr=(\S+)`)
	deadline := time.Now().Add(60 * time.Second) // only keeps a broken test from hanging
	for !regexp.MustCompile(`msg=ready`).MatchString(stderr.String()) {
		select {
		case s := <-status:
			t.Fatalf("dnx serve ended with status %d before it was ready: %q", s, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready line in %q", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	m := addr.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no http address in %q", stderr.String())
	}
	resp, err := http.Get("http://" + m[1] + "/v2/models/tiny/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("model ready: %d", resp.StatusCode)
	}
	cancel(signalCause{syscall.SIGTERM})
	if s := <-status; s != 0 {
		t.Errorf("status %d after SIGTERM, want 0; stderr %q", s, stderr.String())
	}
	if !regexp.MustCompile(`msg="shutting down" cause="SIGTERM received"`).MatchString(stderr.String()) {
		t.Errorf("no shutdown line in %q", stderr.String())
	}
}
