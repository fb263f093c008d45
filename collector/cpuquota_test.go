package collector

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpuQuota confines processes to a share of the machine's CPU with a cgroup, so that a
// benchmark on one machine can give the source server, the store server and the client
// each a machine of their own, as in production: on shared cores the collector, which
// reads and writes at once, competes with both servers for CPU, where a raw read or a raw
// insert alone does not. It needs root and the cgroup cpu controller (v1 cpu.cfs_quota_us
// or v2 cpu.max).
type cpuQuota struct {
	dir string
	v2  bool
}

// quotaPeriod is short so that a confined server waits in short slices, not for a whole
// 100 ms default period, when it runs out of its share.
const quotaPeriod = 10_000 // µs

// newCPUQuota makes a cgroup named name holding at most cores CPUs, removed at cleanup.
func newCPUQuota(tb testing.TB, name string, cores float64) (*cpuQuota, error) {
	q, err := makeCgroup(name)
	if err != nil {
		return nil, err
	}
	quota := int(cores * quotaPeriod)
	if q.v2 {
		err = os.WriteFile(filepath.Join(q.dir, "cpu.max"), fmt.Appendf(nil, "%d %d", quota, quotaPeriod), 0o644)
	} else {
		err = errors.Join(
			os.WriteFile(filepath.Join(q.dir, "cpu.cfs_period_us"), []byte(strconv.Itoa(quotaPeriod)), 0o644),
			os.WriteFile(filepath.Join(q.dir, "cpu.cfs_quota_us"), []byte(strconv.Itoa(quota)), 0o644))
	}
	if err != nil {
		_ = os.Remove(q.dir)
		return nil, fmt.Errorf("setting the CPU quota of %s: %w", q.dir, err)
	}
	// At cleanup, a process still in the group (this one, or a server not yet killed)
	// moves back to the parent group, then the group is removed.
	tb.Cleanup(func() {
		if data, err := os.ReadFile(filepath.Join(q.dir, "cgroup.procs")); err == nil {
			for _, pid := range strings.Fields(string(data)) {
				_ = os.WriteFile(filepath.Join(filepath.Dir(q.dir), "cgroup.procs"), []byte(pid), 0o644)
			}
		}
		_ = os.Remove(q.dir)
	})
	return q, nil
}

// makeCgroup creates the cgroup under the cpu controller's root, v1 first.
func makeCgroup(name string) (*cpuQuota, error) {
	const v1, v2 = "/sys/fs/cgroup/cpu", "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(v1, "cpu.cfs_quota_us")); err == nil {
		dir := filepath.Join(v1, name)
		return &cpuQuota{dir: dir}, os.Mkdir(dir, 0o755)
	}
	controllers, err := os.ReadFile(filepath.Join(v2, "cgroup.subtree_control"))
	if err != nil || !strings.Contains(" "+string(controllers)+" ", " cpu ") {
		return nil, errors.New("no cgroup cpu controller (v1 at /sys/fs/cgroup/cpu, or v2 with cpu in /sys/fs/cgroup/cgroup.subtree_control)")
	}
	dir := filepath.Join(v2, name)
	return &cpuQuota{dir: dir, v2: true}, os.Mkdir(dir, 0o755)
}

// add moves a process, with all its threads, into the group.
func (q *cpuQuota) add(pid int) error {
	if err := os.WriteFile(filepath.Join(q.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("moving process %d into %s: %w", pid, q.dir, err)
	}
	return nil
}
