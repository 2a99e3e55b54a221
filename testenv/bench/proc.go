package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on every
// Linux build we run on).
const clockTicks = 100

// cpuTimes reads a process's user+system CPU, and that of its waited-for
// children (cutime+cstime), from /proc/<pid>/stat.
func cpuTimes(pid int) (self, children time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	// f[0] is field 3 (state); utime is field 14, stime 15, cutime 16, cstime 17.
	tick := func(i int) time.Duration {
		n, _ := strconv.ParseInt(f[i-3], 10, 64)
		return time.Duration(n) * time.Second / clockTicks
	}
	return tick(14) + tick(15), tick(16) + tick(17), nil
}

// parentOf reads a process's parent pid.
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// treeCPU is the CPU of a postmaster and all its backends, live or gone
// (a gone backend's time is in the postmaster's children times).
func treeCPU(root int) time.Duration {
	self, children, err := cpuTimes(root)
	if err != nil {
		return 0
	}
	total := self + children
	entries, _ := filepath.Glob("/proc/[0-9]*")
	for _, e := range entries {
		pid, _ := strconv.Atoi(filepath.Base(e))
		if pid != root && parentOf(pid) == root {
			s, _, err := cpuTimes(pid)
			if err == nil {
				total += s
			}
		}
	}
	return total
}

// statusKB reads a "Key: N kB" line of /proc/<pid>/status.
func statusKB(pid int, key string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

// rssWatch samples a process's RSS every interval until stopped, keeping
// the peak; VmHWM gives the same for a live process, but walhook's is read
// after it exits too.
type rssWatch struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak int64
}

func watchRSS(pid int, every time.Duration) *rssWatch {
	w := &rssWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if hwm := statusKB(pid, "VmHWM"); hwm > 0 {
				w.mu.Lock()
				w.peak = max(w.peak, hwm)
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// Stop ends the sampling and returns the peak RSS in MB.
func (w *rssWatch) Stop() float64 {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return float64(w.peak) / 1024
}
