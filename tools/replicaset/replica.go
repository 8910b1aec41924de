package replicaset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// stopTimeout bounds how long Stop waits for a replica to exit after SIGTERM before it kills
// it: more than the drain delay plus the services' default SHUTDOWN_TIMEOUT (10 s).
const stopTimeout = 20 * time.Second

// Replica is one service process on a loopback address of its own. It may be stopped, killed
// and started again, on the same address.
type Replica struct {
	// Name is the service and the replica's number: "customers-1", "cart-2".
	Name string
	// Service is "customers" or "cart".
	Service string
	// IP is its loopback address; HTTPAddr, GRPCAddr and MetricsAddr are where it listens
	// (ip:port).
	IP, HTTPAddr, GRPCAddr, MetricsAddr string

	set *Set

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the current process has exited
	waitErr  error         // what the current process exited with, once exited is closed
	expected bool          // Stop or Kill ended it
	ready    bool          // started, ready and not told to stop: in DNS (customers)
	readyAt  time.Time     // when it last became ready
	held     bool          // Stop or Kill since the last Start: a pending restart gives up
	delay    time.Duration // the last restart's backoff, 0 before the first restart
}

func (s *Set) newReplica(svc string, n int, ip string) *Replica {
	httpPort, grpcPort, metricsPort := s.cfg.ports(svc)
	return &Replica{
		Name: fmt.Sprintf("%s-%d", svc, n), Service: svc, IP: ip, set: s,
		HTTPAddr:    net.JoinHostPort(ip, strconv.Itoa(httpPort)),
		GRPCAddr:    net.JoinHostPort(ip, strconv.Itoa(grpcPort)),
		MetricsAddr: net.JoinHostPort(ip, strconv.Itoa(metricsPort)),
	}
}

// URL is the base URL of its REST port: "http://127.0.0.21:8082".
func (r *Replica) URL() string { return "http://" + r.HTTPAddr }

// PID is the process id of the running process, 0 when none runs.
func (r *Replica) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.isExited() {
		return 0
	}
	return r.cmd.Process.Pid
}

// isExited reports whether the current process has exited; r.mu is held.
func (r *Replica) isExited() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

func (r *Replica) inDNS() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready
}

// Start starts the replica's process and returns once its /readyz answers 200; a customers
// replica then joins the name's answer, as a pod joins its headless Service once ready. It
// fails if the process exits first, or after Config.ReadyTimeout.
func (r *Replica) Start(ctx context.Context) error { return r.start(ctx, false) }

// errHeld is what a restart returns for a replica stopped or killed since it exited.
var errHeld = errors.New("stopped or killed since it exited")

// start is Start; a restart (the set's, after an exit nobody asked for) does not start a
// replica that Stop or Kill ended meanwhile.
func (r *Replica) start(ctx context.Context, restart bool) error {
	r.mu.Lock()
	if r.cmd != nil && !r.isExited() {
		r.mu.Unlock()
		return fmt.Errorf("%s is running already", r.Name)
	}
	if restart && r.held {
		r.mu.Unlock()
		return errHeld
	}
	r.held = false
	// The process lives until Stop or Kill, not until ctx, which bounds the start only.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), r.set.binary(r.Service), "serve") //nolint:gosec // the service binaries of Config.Bin
	cmd.Env = r.set.env(r.Service, r)
	tail := &tailBuffer{}
	cmd.Stdout = io.MultiWriter(r.set.cfg.Output(r.Name), tail)
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		return fmt.Errorf("%s: %w", r.Name, err)
	}
	exited := make(chan struct{})
	r.cmd, r.exited, r.expected, r.ready = cmd, exited, false, false
	r.mu.Unlock()
	go r.wait(cmd, exited)

	if err := r.waitReady(ctx, exited); err != nil {
		_ = r.kill(false)
		return fmt.Errorf("%s: %w%s", r.Name, err, tail.suffix())
	}
	r.mu.Lock()
	if r.isExited() { // since it answered: its wait did not see it ready
		err := r.waitErr
		r.mu.Unlock()
		return fmt.Errorf("%s exited once ready: %w%s", r.Name, exitError(err), tail.suffix())
	}
	r.ready, r.readyAt = true, time.Now()
	r.mu.Unlock()
	if r.Service == "customers" {
		r.set.updateDNS()
	}
	return nil
}

// wait waits for the process to exit, and reports an exit nobody asked for. A replica that
// exited on its own once ready is started again; one that exits before it is ready is left to
// whoever started it, whose Start fails.
func (r *Replica) wait(cmd *exec.Cmd, exited chan struct{}) {
	err := cmd.Wait()
	r.mu.Lock()
	r.waitErr = err
	expected, wasReady, upFor := r.expected, r.ready, time.Since(r.readyAt)
	r.ready = false
	close(exited)
	r.mu.Unlock()
	if r.Service == "customers" {
		r.set.updateDNS()
	}
	if expected {
		return
	}
	exit := fmt.Errorf("%s (pid %d) exited: %w", r.Name, cmd.Process.Pid, exitError(err))
	select {
	case r.set.exited <- exit:
	default:
	}
	if wasReady {
		r.set.logf("%v, after %v up", exit, upFor.Round(time.Millisecond))
		r.set.superviseRestart(r, upFor)
	}
}

// nextRestartDelay returns, and keeps, the backoff before the next restart of r, which was up
// for upFor before it exited (0: it never became ready).
func (r *Replica) nextRestartDelay(upFor time.Duration) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = r.set.cfg.Restart.next(r.delay, upFor)
	return r.delay
}

// restartDelay is the backoff of r's last restart, 0 before the first.
func (r *Replica) restartDelay() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.delay
}

// waitReady polls /readyz until it answers 200.
func (r *Replica) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, r.set.cfg.ReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(ctx, client, r.URL()) {
			return nil
		}
		select {
		case <-exited:
			r.mu.Lock()
			err := r.waitErr
			r.mu.Unlock()
			return fmt.Errorf("exited before it was ready: %w", exitError(err))
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// errExitedCleanly stands for a process that exited with status 0 where it should not have.
var errExitedCleanly = errors.New("exit status 0")

// exitError is what a process that should not have exited exited with.
func exitError(err error) error {
	if err == nil {
		return errExitedCleanly
	}
	return err
}

// ready reports whether the service at base answers GET /readyz with 200, as a load balancer
// checks before it routes to a replica.
func ready(ctx context.Context, client *http.Client, base string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return false
	}
	res, err := client.Do(req)
	if err != nil {
		return false
	}
	_ = res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// Stop stops the replica as Kubernetes stops a pod: it leaves the name's answer (customers),
// gets SIGTERM, and has stopTimeout to exit (it drains for DrainDelay first); past that it is
// killed. It returns an error unless the process exited cleanly. A restart the set has
// pending gives up, so stopping a replica that died and is not running yet keeps it stopped.
func (r *Replica) Stop() error {
	return r.end(syscall.SIGTERM, true)
}

// Kill kills the replica with SIGKILL, as a node failure or the OOM killer would, and waits
// until it has gone; the set does not start it again, nor does a restart it has pending.
func (r *Replica) Kill() error { return r.kill(true) }

// kill is Kill; hold says whether a pending restart gives up (Kill), or not (a start that
// failed, which its caller may try again).
func (r *Replica) kill(hold bool) error {
	err := r.end(syscall.SIGKILL, hold)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return nil // killed, as asked
	}
	return err
}

func (r *Replica) end(sig syscall.Signal, hold bool) error {
	r.mu.Lock()
	r.held = r.held || hold
	if r.cmd == nil || r.isExited() {
		r.mu.Unlock()
		return nil
	}
	cmd, exited := r.cmd, r.exited
	r.expected, r.ready = true, false
	r.mu.Unlock()
	if r.Service == "customers" {
		r.set.updateDNS()
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s (pid %d) did not exit within %v of %v: killed", r.Name, cmd.Process.Pid, stopTimeout, sig)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waitErr != nil {
		return fmt.Errorf("%s (pid %d) after %v: %w", r.Name, cmd.Process.Pid, sig, r.waitErr)
	}
	return nil
}

// tailBuffer keeps the last bytes of a log, to quote in an error.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 2048

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

// suffix is the tail to append to an error message, or "" when nothing was logged.
func (t *tailBuffer) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) == 0 {
		return ""
	}
	return "; the end of its log:\n" + string(t.buf)
}
