package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/forwards"
	"github.com/devmtls/devmtls/portforward"
	"github.com/devmtls/devmtls/portforward/target"
)

func TestForwardArgsNeedTargetsOrFile(t *testing.T) {
	_, errOut, code := cli(t, "forward")
	if code != exitUsage || !strings.Contains(errOut, "TYPE/NAME") || !strings.Contains(errOut, "-f FILE") {
		t.Errorf("forward without arguments: exit %d, want %d naming both forms:\n%s", code, exitUsage, errOut)
	}
	_, errOut, code = cli(t, "forward", "-f", "forwards.yaml", "svc/orders", "8443:443")
	if code != exitUsage || !strings.Contains(errOut, "give one of them") {
		t.Errorf("-f with TYPE/NAME: exit %d, want %d:\n%s", code, exitUsage, errOut)
	}
}

func TestForwardFileRefusesPerTargetFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "forwards.yaml")
	if err := os.WriteFile(file, []byte("forwards:\n  - {target: svc/orders, ports: [\"443\"]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--secret=mtls", "--server-name=orders", "--protocol=postgres"} {
		_, errOut, code := cli(t, "--dir", filepath.Join(dir, ".devmtls"), "forward", "-f", file, flag)
		if code != exitUsage || !strings.Contains(errOut, "in the entries of") {
			t.Errorf("-f with %s: exit %d, want %d:\n%s", flag, code, exitUsage, errOut)
		}
	}
}

func TestForwardFileErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "forwards.yaml")
	if err := os.WriteFile(file, []byte("forwards:\n  - {target: svc/orders, secret: mtls, creds: ./c, ports: [\"443\"]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := cli(t, "--dir", filepath.Join(dir, ".devmtls"), "forward", "-f", file)
	if code == 0 || !strings.Contains(errOut, file) || !strings.Contains(errOut, "forwards[0].creds") {
		t.Errorf("secret and creds together: exit %d:\n%s", code, errOut)
	}
	_, errOut, code = cli(t, "--dir", filepath.Join(dir, ".devmtls"), "forward", "--log-format", "xml", "-f", file)
	if code != exitUsage || !strings.Contains(errOut, "--log-format") {
		t.Errorf("--log-format xml: exit %d:\n%s", code, errOut)
	}
}

func TestForwardLogFormatDefaultFromEnvironment(t *testing.T) {
	t.Setenv(envLogFormat, "json")
	cmd := newForwardCmd(&globalOptions{})
	if got := cmd.Flags().Lookup("log-format").DefValue; got != "json" {
		t.Errorf("--log-format default with %s=json: %q", envLogFormat, got)
	}
}

func fileEntries(t *testing.T) []fileEntry {
	t.Helper()
	orders, err := target.ParseTarget("svc/orders")
	if err != nil {
		t.Fatal(err)
	}
	orders.Ports = []target.PortSpec{{Local: 443, Remote: "443"}}
	db, err := target.ParseTarget("sts/pg-main")
	if err != nil {
		t.Fatal(err)
	}
	db.Ports = []target.PortSpec{{Local: 5432, Remote: "postgres"}, {Local: 9187, Remote: "9187"}}
	return []fileEntry{
		{fwd: forwards.Forward{As: "orders", Target: orders}, ports: map[int]int{443: 21001},
			opts: portforward.Options{Namespace: "shop", Addresses: []string{"127.0.0.1"}}},
		{fwd: forwards.Forward{As: "pg-main", Target: db, Context: "staging"}, ports: map[int]int{5432: 21002, 9187: 21003},
			opts: portforward.Options{Namespace: "data", Addresses: []string{"localhost"}}},
	}
}

// The NAME_ADDR lines are what devmtls env prints for the same forwards.
func TestForwardFileVars(t *testing.T) {
	var out bytes.Buffer
	printVars(&out, fileVars(fileEntries(t), "127.0.0.1"))
	want := "ORDERS_ADDR=127.0.0.1:21001\nPG_MAIN_ADDR=127.0.0.1:21002\nPG_MAIN_5432_ADDR=127.0.0.1:21002\nPG_MAIN_9187_ADDR=127.0.0.1:21003\n"
	if out.String() != want {
		t.Errorf("vars:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestForwardFileTable(t *testing.T) {
	var out bytes.Buffer
	printTable(&out, fileEntries(t))
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	want := [][]string{
		{"NAME", "TARGET", "NAMESPACE", "CONTEXT", "LISTEN", "REMOTE", "VARIABLE"},
		{"orders", "svc/orders", "shop", "-", "127.0.0.1:21001", "443", "ORDERS_ADDR"},
		{"pg-main", "sts/pg-main", "data", "staging", "127.0.0.1:21002,[::1]:21002", "postgres", "PG_MAIN_5432_ADDR"},
		{"pg-main", "sts/pg-main", "data", "staging", "127.0.0.1:21003,[::1]:21003", "9187", "PG_MAIN_9187_ADDR"},
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", out.String())
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d: %q, want %q", i, got, w)
		}
	}
}
