// Package testenv locates the read-only shared test data (../shared beside the repository, or
// $DNX_SHARED) for tests in any dnx package.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// SharedDir returns the shared data folder: $DNX_SHARED when set, else ../shared relative to the
// repository root. It returns "" when the folder does not exist.
func SharedDir() string {
	dir := os.Getenv("DNX_SHARED")
	if dir == "" {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			return ""
		}
		// file is <repo>/internal/testenv/testenv.go
		dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "shared")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return ""
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	return abs
}

// Shared returns the path of rel inside the shared data folder, skipping the test with a message
// that says how to provide the data when the folder or the file is absent. On CI the data must be
// present: with CI=true a missing folder fails the test instead of skipping it.
func Shared(t testing.TB, rel string) string {
	t.Helper()
	dir := SharedDir()
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared test data not found (set DNX_SHARED or place it at ../shared); CI must run these tests")
		}
		t.Skipf("shared test data not found: set DNX_SHARED or place it at ../shared beside the repository")
	}
	p := filepath.Join(dir, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared test data %s not present: %v", rel, err)
	}
	return p
}
