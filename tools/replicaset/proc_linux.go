package replicaset

import "syscall"

// sysProcAttr puts a replica in a process group of its own, so that a Ctrl-C in the terminal
// reaches only the runner, which stops the replicas in order (SIGTERM, drain), and has the
// kernel send it SIGTERM should the runner die without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
