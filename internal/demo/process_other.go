//go:build !linux

package demo

import "syscall"

// childAttributes: only Linux can tie a child's life to the demo's; elsewhere the demo
// stops its children itself when it stops.
func childAttributes() *syscall.SysProcAttr { return nil }
