package membudget

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/dnx-ml/dnx/runtime/tensor"
)

// ErrOverBudget is wrapped by every error about an allocation larger than the budget.
var ErrOverBudget = errors.New("over the memory budget")

// DefaultFraction is the share of physical memory a zero Budget allows: enough for any model the
// machine can run (DenseNet-121 inference needs about 110 MiB, fine-tuning DenseNet-BC-100 at
// batch 64 about 450 MiB), while a runaway allocation fails before the system starts swapping or
// the kernel's OOM killer picks a process: the garbage collector lets the heap grow past what is
// live, so half the memory is what a process can count on holding.
const DefaultFraction = 0.5

// fallbackPhysical is the physical memory assumed where it cannot be read (not Linux).
const fallbackPhysical = 8 << 30

// Budget is the largest number of bytes one tensor, arena or decoded image may take. The zero
// value is Default(); a negative limit means no limit.
type Budget struct {
	limit int64
	used  int64 // bytes already held, counted by every check (see InUse)
}

// New returns a budget of limit bytes: 0 gives Default(), a negative limit none.
func New(limit int64) Budget {
	if limit == 0 {
		return Default()
	}
	return Budget{limit: limit}
}

// Unlimited returns a budget that allows everything (tests, trusted inputs).
func Unlimited() Budget { return Budget{limit: -1} }

// Default returns DefaultFraction of the physical memory.
func Default() Budget { return Budget{limit: int64(DefaultFraction * float64(Physical()))} }

// Limit returns the budget in bytes (resolving the zero value), or -1 for no limit.
func (b Budget) Limit() int64 {
	if b.limit == 0 {
		return Default().limit
	}
	return b.limit
}

// String formats the budget as "18 GiB" (or "unlimited").
func (b Budget) String() string {
	if b.Limit() < 0 {
		return "unlimited"
	}
	return FormatBytes(b.Limit())
}

// InUse returns the budget with n bytes already held: its checks pass only when what they check
// fits next to them (an interpreter holding the live values of a run, say).
func (b Budget) InUse(n int64) Budget {
	b.used = max(n, 0)
	return b
}

// over formats the error of n bytes (named what) over limit l.
func (b Budget) over(what string, n, l int64) error {
	if b.used > 0 {
		return fmt.Errorf("%w: %s needs %s (%d bytes) with %s already in use; the memory budget is %s (--max-memory)",
			ErrOverBudget, what, FormatBytes(n), n, FormatBytes(b.used), FormatBytes(l))
	}
	return fmt.Errorf("%w: %s needs %s (%d bytes); the memory budget is %s (--max-memory)", ErrOverBudget, what, FormatBytes(n), n, FormatBytes(l))
}

// Bytes returns the bytes of a tensor of dt with shape, and false when the count overflows int64
// or a dim is negative.
func Bytes(dt tensor.DType, shape tensor.Shape) (int64, bool) {
	n := uint64(max(dt.ByteSize(), 1))
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		n = lo
	}
	return int64(n), true
}

// Check returns an error wrapping ErrOverBudget when a tensor of dt with shape does not fit the
// budget; what names it ("node \"x\" (Pad) output 0").
func (b Budget) Check(what string, dt tensor.DType, shape tensor.Shape) error {
	n, ok := Bytes(dt, shape)
	if !ok {
		return fmt.Errorf("%w: %s %v %s: the size overflows", ErrOverBudget, what, shape, dt)
	}
	if l := b.Limit(); l >= 0 && n > l-b.used {
		return b.over(fmt.Sprintf("%s %v %s", what, shape, dt), n, l)
	}
	return nil
}

// CheckBytes returns an error wrapping ErrOverBudget when n bytes do not fit the budget.
func (b Budget) CheckBytes(what string, n int64) error {
	if l := b.Limit(); l >= 0 && (n < 0 || n > l-b.used) {
		if n < 0 {
			return fmt.Errorf("%w: %s: the size overflows", ErrOverBudget, what)
		}
		return b.over(what, n, l)
	}
	return nil
}

// FormatBytes formats n with a binary unit: "512 B", "1.5 KiB", "16 GiB".
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[u]
}

// ParseSize reads a size: a number of bytes with an optional unit (K, M, G, T: powers of 1024,
// also written KiB, KB, ...; B), or a percentage of the physical memory ("50%"). It refuses
// zero, negative and non-finite sizes.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("size %q: %s (want e.g. 4GiB, 512M, 2000000000 or 50%%)", s, why)
	}
	if t == "" {
		return bad("empty")
	}
	if p, ok := strings.CutSuffix(t, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || f <= 0 || f > 100 {
			return bad("a percentage must be in (0, 100]")
		}
		return int64(f / 100 * float64(Physical())), nil
	}
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToUpper(strings.TrimSpace(t[i:]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50}
	sh, ok := shift[unit]
	if !ok {
		return bad("unknown unit " + strconv.Quote(t[i:]))
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return bad("not a number")
	}
	v := f * float64(uint64(1)<<sh)
	if v < 1 {
		return bad("must be at least 1 byte")
	}
	if v >= math.MaxInt64 {
		return bad("too large")
	}
	return int64(v), nil
}

// Physical returns the machine's physical memory in bytes, or the cgroup's memory limit when that
// is lower (a container), or 8 GiB where neither can be read.
func Physical() int64 { return physical() }

// physical reads the memory once per process: a zero Budget resolves its limit on every check,
// and the reference interpreter checks every node's outputs.
var physical = sync.OnceValue(readPhysical)

// readPhysical is Physical, read from the system.
func readPhysical() int64 {
	total := memTotal()
	if total <= 0 {
		total = fallbackPhysical
	}
	if l := cgroupLimit(); l > 0 && l < total {
		total = l
	}
	return total
}

// memTotal reads MemTotal from /proc/meminfo (Linux), or returns 0.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil && kb > 0 && kb < math.MaxInt64/1024 {
				return kb * 1024
			}
		}
	}
	return 0
}

// cgroupLimit reads the memory limit of the process's cgroup (v2, then v1), or returns 0.
func cgroupLimit() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && v > 0 {
			return v
		}
	}
	return 0
}
