//go:build unix

package cpu

import (
	"syscall"
	"time"
)

// convCPUTime returns the CPU time this process has used (0 where it cannot tell).
func convCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
