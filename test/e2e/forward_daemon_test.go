package e2e

import (
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemonEvent is a line of the background forwards' JSON log.
type daemonEvent struct {
	Time          time.Time `json:"time"`
	Kind          string    `json:"kind"`
	Name          string    `json:"name"`
	Target        string    `json:"target"`
	Pod           string    `json:"pod"`
	Local         string    `json:"local"`
	Client        string    `json:"client"`
	Remote        string    `json:"remote"`
	BytesSent     int64     `json:"bytes_sent"`
	BytesReceived int64     `json:"bytes_received"`
	Message       string    `json:"message"`
}

// forwardsStatus is what devmtls status --json says of the forwards.
type forwardsStatus struct {
	Forwards *struct {
		Forwards []struct {
			As   string `json:"as"`
			Pods []struct {
				Pod   string `json:"pod"`
				Open  int64  `json:"open"`
				Total int64  `json:"total"`
			} `json:"pods"`
		} `json:"forwards"`
	} `json:"forwards"`
}

// TestForwardsDaemonLogsJSONAndShowsPods runs the background forwards process
// as devmtls up starts it (the hidden forwards-daemon command, on a spec as
// up writes it; compose and the relays are left out, they are the hybrid
// tests'), with DEVMTLS_LOG_FORMAT=json: its connections spread over the
// service's three pods, devmtls status shows them per pod in text and JSON,
// and every line of its log is a JSON event.
func TestForwardsDaemonLogsJSONAndShowsPods(t *testing.T) {
	s := newShop(t, false)
	s.c.deploySpread(t, s.ns, "orders", 3, notReadyDir(t))
	pods := s.c.pods(t, s.ns, "orders")

	env := s.dev.Dir
	if err := os.MkdirAll(filepath.Join(env, "forwards"), 0o700); err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(freeLocalPort(t))
	spec, _ := json.Marshal(map[string]any{
		"kubeconfig": s.c.kubeconfig,
		"forwards":   []map[string]any{{"as": "orders", "target": "svc/orders", "ports": []string{"443"}, "namespace": s.ns, "protocol": "tcp"}},
		"host_ports": map[string]map[string]int{"orders": {"443": port}},
	})
	if err := os.WriteFile(filepath.Join(env, "forwards", "spec.json"), spec, 0o600); err != nil {
		t.Fatal(err)
	}
	daemon := osexec.Command(devmtlsBin, "--dir", env, "forwards-daemon")
	daemon.Env = append(os.Environ(), "DEVMTLS_LOG_FORMAT=json")
	log := &syncBuffer{}
	daemon.Stdout, daemon.Stderr = log, log
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	stop := func() {
		if daemon.ProcessState == nil {
			daemon.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				daemon.Process.Kill()
				<-exited
			}
		}
	}
	t.Cleanup(stop)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for i := 0; !strings.Contains(log.String(), `"kind":"listening"`); i++ {
		if i == 600 {
			t.Fatalf("the forwards process did not listen:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}

	got := s.whoServes(t, addr, 30)
	for _, p := range pods {
		if got[p] == 0 {
			t.Errorf("pod %s got none of 30 connections through the background forward: %v", p, got)
		}
	}

	// The process publishes its counts once a second; status reads them.
	statusDir := t.TempDir() // no compose project here
	var st forwardsStatus
	for i := 0; ; i++ {
		cmd := osexec.Command(devmtlsBin, "--dir", env, "status", "--json")
		cmd.Dir = statusDir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("devmtls status --json: %v\n%s", err, out)
		}
		st = forwardsStatus{}
		if err := json.Unmarshal(out, &st); err != nil {
			t.Fatalf("status JSON: %v\n%s", err, out)
		}
		var total int64
		if st.Forwards != nil && len(st.Forwards.Forwards) == 1 {
			for _, p := range st.Forwards.Forwards[0].Pods {
				total += p.Total
			}
		}
		if total == 30 {
			break
		}
		if i == 100 {
			t.Fatalf("status never showed the 30 connections per pod:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range st.Forwards.Forwards[0].Pods {
		if p.Total != int64(got[p.Pod]) || p.Open != 0 {
			t.Errorf("status: pod %s %d open, %d total; the pods answered %v", p.Pod, p.Open, p.Total, got)
		}
	}
	cmd := osexec.Command(devmtlsBin, "--dir", env, "status")
	cmd.Dir = statusDir
	text, err := cmd.Output()
	if err != nil {
		t.Fatalf("devmtls status: %v\n%s", err, text)
	}
	for p, n := range got {
		if want := p + " 0/" + strconv.Itoa(n); !strings.Contains(string(text), want) {
			t.Errorf("status text does not show %q:\n%s", want, text)
		}
	}

	stop()
	kinds := map[string]int{}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	for i, line := range lines {
		var e daemonEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %d is not a JSON event: %v\n%s", i+1, err, line)
		}
		if e.Time.IsZero() || e.Kind == "" {
			t.Errorf("log line %d has no time or kind: %s", i+1, line)
		}
		kinds[e.Kind]++
		if e.Kind == "closed" && (e.Name != "orders" || e.Target != "svc/orders" || got[e.Pod] == 0 ||
			e.BytesSent == 0 || e.BytesReceived == 0 || e.Client == "" || e.Local != addr) {
			t.Errorf("closed event: %s", line)
		}
	}
	if kinds["listening"] != 1 || kinds["opened"] != 30 || kinds["closed"] != 30 {
		t.Errorf("log events %v; want 1 listening, 30 opened, 30 closed", kinds)
	}
}
