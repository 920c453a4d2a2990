package membudget

import (
	"errors"
	"strings"
	"testing"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

func TestCheck(t *testing.T) {
	b := New(1 << 20)
	cases := []struct {
		name  string
		dt    tensor.DType
		shape tensor.Shape
		ok    bool
		msg   string
	}{
		{"fits", tensor.Float32, tensor.Shape{256, 1024}, true, ""},
		{"one byte over", tensor.Uint8, tensor.Shape{1<<20 + 1}, false, "needs 1 MiB (1048577 bytes); the memory budget is 1 MiB"},
		{"ConstantOfShape probe", tensor.Float32, tensor.Shape{65536, 65536}, false, "[65536 65536] float32 needs 16 GiB"},
		{"overflow", tensor.Float64, tensor.Shape{1 << 31, 1 << 31, 1 << 31}, false, "overflows"},
		{"empty", tensor.Float32, tensor.Shape{0, 3, 224, 224}, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := b.Check("node \"c\" output", c.dt, c.shape)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if err != nil && (!errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "node \"c\" output")) {
				t.Errorf("err = %q, want ErrOverBudget containing %q and the name", err, c.msg)
			}
		})
	}
	if err := Unlimited().Check("x", tensor.Float32, tensor.Shape{1 << 40}); err != nil {
		t.Errorf("Unlimited refused: %v", err)
	}
	if err := b.CheckBytes("arena", -1); err == nil {
		t.Error("CheckBytes accepted an overflowed (negative) size")
	}
}

func TestDefault(t *testing.T) {
	var zero Budget
	if zero.Limit() != Default().Limit() || Default().Limit() <= 0 {
		t.Fatalf("zero budget %d, Default %d", zero.Limit(), Default().Limit())
	}
	if p := Physical(); Default().Limit() > p {
		t.Errorf("Default %d exceeds physical memory %d", Default().Limit(), p)
	}
	t.Logf("physical memory %s, default budget %s", FormatBytes(Physical()), Default())
}

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"4GiB", 4 << 30, true}, {"4G", 4 << 30, true}, {"4gb", 4 << 30, true}, {"512M", 512 << 20, true},
		{"1.5K", 1536, true}, {"2000000000", 2000000000, true}, {"100B", 100, true}, {" 2 GiB ", 2 << 30, true},
		{"", 0, false}, {"0", 0, false}, {"-1G", 0, false}, {"G", 0, false}, {"12Q", 0, false}, {"NaN", 0, false},
		{"0%", 0, false}, {"150%", 0, false}, {"1e30T", 0, false},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
	if half, err := ParseSize("50%"); err != nil || half != Physical()/2 {
		t.Errorf("ParseSize(50%%) = %d, %v; want %d", half, err, Physical()/2)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 16 << 30: "16 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestInUse(t *testing.T) {
	b := New(1 << 20).InUse(768 << 10)
	if err := b.CheckBytes("next", 256<<10); err != nil {
		t.Errorf("256 KiB next to 768 KiB under 1 MiB: %v", err)
	}
	err := b.Check("node \"n\" output", tensor.Float32, tensor.Shape{65537})
	if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), "768 KiB already in use") {
		t.Errorf("one float32 too many: %v, want ErrOverBudget saying what is in use", err)
	}
	if err := Unlimited().InUse(1<<40).CheckBytes("x", 1<<40); err != nil {
		t.Errorf("Unlimited with use: %v", err)
	}
}
