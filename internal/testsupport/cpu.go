package testsupport

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// ProcessCPU is the CPU time the process pid has used, from /proc (Linux; in clock
// ticks of 10 ms): what a benchmark cost a server it runs apart, beside its own.
func ProcessCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	var utime, stime int64
	fmt.Sscan(fields[11], &utime) // fields 14 and 15 of stat, counted after the command
	fmt.Sscan(fields[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// OwnCPU is the CPU time this process has used.
func OwnCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
