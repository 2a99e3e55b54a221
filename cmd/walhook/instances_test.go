package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/relay"
	"github.com/walhook/walhook/testenv"
)

const instancesToken = "instances-test-token-0123456789"

// TestInstancesOfTheBinary runs two `walhook run` processes on one config
// (each with its own admin listener): both register, the one streaming
// from the slot as leader; `walhook status`, GET /v1/instances and
// /metrics show them. A SIGKILLed instance turns dead once its heartbeat is
// older than the threshold and stays listed; one stopped with SIGTERM
// removes its row; a live instance prunes the dead one's row later.
func TestInstancesOfTheBinary(t *testing.T) {
	db, s, url := processTest(t, 0)
	slot := testenv.Name(t, "slot")
	addrA, addrB := freeAddr(t), freeAddr(t)
	cfgA := writeConfig(t, db, slot, url, s.secret, adminBlock(addrA))
	cfgB := writeConfig(t, db, slot, url, s.secret, adminBlock(addrB))
	a := startDaemon(t, cfgA)
	waitSlot(t, db, slot)
	b := startDaemon(t, cfgB)
	pidA, pidB := a.cmd.Process.Pid, b.cmd.Process.Pid

	var rep statusReport
	testkit.Eventually(t, "both instances registered, a as leader", func() bool {
		rep = statusJSON(t, cfgA)
		ia, ib := instanceOf(rep.Instances, pidA), instanceOf(rep.Instances, pidB)
		return ia != nil && ib != nil && ia.State == "alive" && ia.Role == store.RoleLeader && ib.State == "alive" && ib.Role == store.RoleStandby
	})
	if ia := instanceOf(rep.Instances, pidA); ia.Listen != addrA || ia.Host == "" || ia.Version == "" {
		t.Errorf("leader as status shows it: %+v", ia)
	}
	var out bytes.Buffer
	if code := execute(context.Background(), []string{"status", "-c", cfgA}, testApp(&out, io.Discard)); code != 0 {
		t.Fatalf("status exit %d", code)
	}
	if text := out.String(); !strings.Contains(text, "instances: 2 alive") || !strings.Contains(text, fmt.Sprintf("%d", pidA)) || !strings.Contains(text, "leader") {
		t.Errorf("status text lacks the instances:\n%s", text)
	}
	if got := apiInstances(t, addrB); len(got) != 2 || got[0].PID != pidA || got[0].Role != store.RoleLeader {
		t.Errorf("GET /v1/instances from b = %+v, want a (leader) first", got)
	}

	// kill -9 of the standby: no leave, so it turns dead after the threshold.
	killed := time.Now()
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = b.cmd.Wait()
	testkit.Eventually(t, "the killed instance shown dead", func() bool {
		ib := instanceOf(statusJSON(t, cfgA).Instances, pidB)
		return ib != nil && ib.State == "dead"
	})
	t.Logf("the killed instance was shown dead %s after SIGKILL", time.Since(killed).Round(100*time.Millisecond))
	testkit.Eventually(t, "/metrics to count one dead instance", func() bool {
		m := metricsText(t, addrA)
		return strings.Contains(m, `walhook_instances{state="dead"} 1`) && strings.Contains(m, `walhook_instances{state="alive"} 1`)
	})

	// SIGTERM of the leader: it drains, then removes its row; the dead
	// one stays listed until it is pruned (an hour later by default).
	a.stop(t)
	rep = statusJSON(t, cfgA)
	if instanceOf(rep.Instances, pidA) != nil {
		t.Errorf("the instance stopped with SIGTERM is still listed: %+v", rep.Instances)
	}
	if ib := instanceOf(rep.Instances, pidB); ib == nil || ib.State != "dead" {
		t.Errorf("the killed instance after the other stopped: %+v, want listed dead", rep.Instances)
	}

	// A live instance prunes the killed one's row once it has been dead
	// for PruneAfter: one in this process, with a second instead of an hour.
	stopRelay := runRelay(t, writeConfig(t, db, slot, url, s.secret, ""), relay.Options{MemberEvery: 200 * time.Millisecond, MemberPruneAfter: time.Second})
	testkit.Eventually(t, "the killed instance's row pruned", func() bool {
		return instanceOf(statusJSON(t, cfgA).Instances, pidB) == nil
	})
	stopRelay()
}

// runRelay runs a relay from the config at path in this process; stop
// ends it and waits for it.
func runRelay(t *testing.T, path string, opts relay.Options) (stop func()) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Parse(src, path)
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := relay.New(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("in-process relay: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func adminBlock(addr string) string {
	return fmt.Sprintf("admin {\n  listen = %q\n  token  = %q\n}\n", addr, instancesToken)
}

// freeAddr is a loopback address with a port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// statusJSON runs `walhook status --json`.
func statusJSON(t *testing.T, cfg string) statusReport {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := execute(context.Background(), []string{"status", "--json", "-c", cfg}, testApp(&out, &errOut)); code != 0 {
		t.Fatalf("status exit %d: %s", code, errOut.String())
	}
	var rep statusReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out.String())
	}
	return rep
}

func instanceOf(ins []instanceStatus, pid int) *instanceStatus {
	for i := range ins {
		if ins[i].PID == pid {
			return &ins[i]
		}
	}
	return nil
}

// apiInstances asks the admin listener at addr for GET /v1/instances.
func apiInstances(t *testing.T, addr string) []instanceStatus {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/instances", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+instancesToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct{ Data []instanceStatus }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/instances: %d, %v", res.StatusCode, err)
	}
	return body.Data
}

// metricsText fetches /metrics from the admin listener at addr.
func metricsText(t *testing.T, addr string) string {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
