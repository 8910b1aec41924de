package main

import (
	"os"
	"strconv"
	"strings"
)

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on
// every Linux this runs on.
const clockTicks = 100

// cpuSeconds is the user plus system CPU time the process pid has used, from /proc/PID/stat.
func cpuSeconds(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat") //nolint:gosec // a process of the benchmark's own
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after its closing ')' are fixed.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / clockTicks
}

// postgresCPUSeconds sums cpuSeconds over every PostgreSQL process: the server's backends
// and its background workers.
func postgresCPUSeconds() float64 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	total := 0.0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		total += cpuSeconds(e.Name())
	}
	return total
}

// cpuSplit is the CPU time each part of the benchmark used during one scenario.
type cpuSplit struct {
	Load, Customers, Cart, Baseline, Postgres float64
}

// cpuSampler reads the CPU counters of the benchmark's processes: every replica of each
// service.
type cpuSampler struct {
	customers, cart []instance
	baseline        instance
}

func (s cpuSampler) read() cpuSplit {
	sum := func(is []instance) float64 {
		total := 0.0
		for _, i := range is {
			total += cpuSeconds(strconv.Itoa(i.pid))
		}
		return total
	}
	return cpuSplit{
		Load:      cpuSeconds("self"),
		Customers: sum(s.customers),
		Cart:      sum(s.cart),
		Baseline:  cpuSeconds(strconv.Itoa(s.baseline.pid)),
		Postgres:  postgresCPUSeconds(),
	}
}

func (c cpuSplit) sub(o cpuSplit) cpuSplit {
	return cpuSplit{c.Load - o.Load, c.Customers - o.Customers, c.Cart - o.Cart, c.Baseline - o.Baseline, c.Postgres - o.Postgres}
}

func (c cpuSplit) add(o cpuSplit) cpuSplit {
	return cpuSplit{c.Load + o.Load, c.Customers + o.Customers, c.Cart + o.Cart, c.Baseline + o.Baseline, c.Postgres + o.Postgres}
}
