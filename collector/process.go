package collector

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// processIdentity tells one process apart from every other that ran on its host since
// it booted: the kernel's boot id, the pid namespace (two containers' pid 1 are
// different processes), and the process's start time, so that a pid used again by a
// later process is not taken for the first. It is what a collector on the same host
// needs to prove a lease's holder dead (Linux's /proc; elsewhere there is none).
type processIdentity struct {
	BootID       string `bson:"boot_id"`
	PIDNamespace string `bson:"pid_namespace"`
	// StartTicks is when the process started, in clock ticks after boot
	// (/proc/<pid>/stat, field 22).
	StartTicks uint64 `bson:"start_ticks"`
}

// thisProcess is this process's identity, nil where /proc does not give it.
func thisProcess() *processIdentity {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return nil
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return nil
	}
	_, start, err := processStat(os.Getpid())
	if err != nil {
		return nil
	}
	return &processIdentity{BootID: strings.TrimSpace(string(boot)), PIDNamespace: ns, StartTicks: start}
}

// processStat reads a process's state letter and start time from /proc/<pid>/stat.
func processStat(pid int) (state byte, startTicks uint64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command, field 2, is in parentheses and may hold spaces and parentheses: the
	// fields after it are counted from its last ')'.
	end := strings.LastIndexByte(string(data), ')')
	if end < 0 {
		return 0, 0, errors.New("malformed " + fmt.Sprintf("/proc/%d/stat", pid))
	}
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) < 20 {
		return 0, 0, errors.New("malformed " + fmt.Sprintf("/proc/%d/stat", pid))
	}
	start, err := strconv.ParseUint(fields[19], 10, 64) // field 22 of stat
	if err != nil || len(fields[0]) != 1 {
		return 0, 0, errors.New("malformed " + fmt.Sprintf("/proc/%d/stat", pid))
	}
	return fields[0][0], start, nil
}

// gone tells whether the process that held a lease, recorded as (host, pid, p), has
// ended, as seen from this process (me, on host): only on the same host, boot and pid
// namespace can it be told, and only a process that no longer exists (or a zombie, or
// another process that got its pid) counts. Whatever cannot be read is taken as alive.
func gone(host string, pid int, p *processIdentity, me *processIdentity, myHost string) bool {
	if p == nil || me == nil || pid <= 0 || host != myHost || p.BootID != me.BootID || p.PIDNamespace != me.PIDNamespace {
		return false
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	state, start, err := processStat(pid)
	if err != nil {
		return false // hidden from us (hidepid), or gone between the two reads: the TTL decides
	}
	return state == 'Z' || state == 'X' || start != p.StartTicks
}
