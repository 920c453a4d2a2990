package plural

import "testing"

func TestCount(t *testing.T) {
	for _, c := range []struct {
		n     int
		word  string
		forms []string
		want  string
	}{
		{1, "step", nil, "1 step"}, {0, "step", nil, "0 steps"}, {2, "epoch", nil, "2 epochs"},
		{3, "batch", []string{"batches"}, "3 batches"}, {1, "batch", []string{"batches"}, "1 batch"},
	} {
		if got := Count(c.n, c.word, c.forms...); got != c.want {
			t.Errorf("Count(%d, %q, %q) = %q, want %q", c.n, c.word, c.forms, got, c.want)
		}
	}
}
