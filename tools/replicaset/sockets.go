package replicaset

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// TCP states of the kernel's TCP table (include/net/tcp_states.h).
const (
	TCPEstablished = 0x01
	TCPListen      = 0x0A
)

// Socket is one of a process's IPv4 TCP sockets.
type Socket struct {
	Local, Remote netip.AddrPort
	// State is the kernel's TCP state (TCPListen, TCPEstablished, ...).
	State uint64
}

// Sockets returns the IPv4 TCP sockets process pid has open, as ss does: the sockets among its
// open files, looked up in the kernel's TCP table of its network namespace (/proc/PID/net/tcp).
// Linux only.
func Sockets(pid int) ([]Socket, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	table, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return nil, err
	}
	var sockets []Socket
	for _, line := range strings.Split(string(table), "\n")[1:] {
		// "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout
		// inode ...": each address is the IPv4 address, as a number in the host's byte order,
		// and the port, both in hex; so is the state.
		f := strings.Fields(line)
		if len(f) < 10 || !inodes[f[9]] {
			continue
		}
		local, err := parseProcAddr(f[1])
		if err != nil {
			return nil, err
		}
		remote, err := parseProcAddr(f[2])
		if err != nil {
			return nil, err
		}
		state, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("state %s: %w", f[3], err)
		}
		sockets = append(sockets, Socket{Local: local, Remote: remote, State: state})
	}
	return sockets, nil
}

func parseProcAddr(s string) (netip.AddrPort, error) {
	host, port, _ := strings.Cut(s, ":")
	ip, err := strconv.ParseUint(host, 16, 32)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s: %w", s, err)
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s: %w", s, err)
	}
	a, _ := netip.AddrFromSlice(binary.NativeEndian.AppendUint32(nil, uint32(ip)))
	return netip.AddrPortFrom(a, uint16(p)), nil
}
