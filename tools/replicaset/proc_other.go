//go:build unix && !linux

package replicaset

import "syscall"

// sysProcAttr puts a replica in a process group of its own, so that a Ctrl-C in the terminal
// reaches only the runner, which stops the replicas in order (SIGTERM, drain).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
