package demo

import "syscall"

// childAttributes makes the kernel stop a child should the demo itself die without
// stopping it (killed with SIGKILL, say): no daemon is left running.
func childAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
