package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tailscale/hujson"
)

// forwardsProject lays out a Compose project with a Go service on the host
// and two forwards in x-devmtls: pricing with one port and pg-main with two.
// Nothing here needs Docker or a cluster: the host ports come from
// hybrid.Place, which only records them in the environment directory.
func forwardsProject(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shop")
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/shop\n")
	writeFile(t, filepath.Join(dir, "cmd", "orders", "main.go"), "package main\n\nfunc main() {}\n")
	writeFile(t, filepath.Join(dir, "compose.yaml"), `x-devmtls:
  mode: shared
  forwards:
    - target: svc/pricing
      namespace: shop
      ports: ["443"]
    - target: sts/pg-main
      namespace: data
      ports: ["5432", "9187"]
services:
  orders:
    image: orders
`)
	return dir
}

// forwardVarNames are the variables devmtls names for forwardsProject's
// forwards: NAME_ADDR for the first port, and NAME_PORT_ADDR per port when a
// forward has several.
var forwardVarNames = []string{"PRICING_ADDR", "PG_MAIN_ADDR", "PG_MAIN_5432_ADDR", "PG_MAIN_9187_ADDR"}

// TestIDEWritesForwardAddresses: inside a Compose project with
// x-devmtls.forwards, devmtls ide jetbrains and devmtls ide vscode write each
// forward's address variables into the run configurations, with the values
// devmtls env prints, and a second run keeps them (the host ports are chosen
// once per environment).
func TestIDEWritesForwardAddresses(t *testing.T) {
	dir := forwardsProject(t)
	t.Setenv("COMPOSE_FILE", "")
	t.Setenv("DEVMTLS_DIR", "")
	t.Chdir(dir)

	var want map[string]string
	if err := json.Unmarshal([]byte(mustCLI(t, "env", "--format", "json")), &want); err != nil {
		t.Fatalf("devmtls env --format json: %v", err)
	}
	for _, name := range forwardVarNames {
		host, port, err := net.SplitHostPort(want[name])
		if p, _ := strconv.Atoi(port); err != nil || host != "127.0.0.1" || p < 1024 {
			t.Fatalf("devmtls env: %s=%q, want 127.0.0.1 and an unprivileged port", name, want[name])
		}
	}
	if want["PG_MAIN_ADDR"] != want["PG_MAIN_5432_ADDR"] || want["PG_MAIN_5432_ADDR"] == want["PG_MAIN_9187_ADDR"] {
		t.Errorf("devmtls env: pg-main's variables %v", want)
	}

	mustCLI(t, "ide", "jetbrains", "--lang", "go")
	xmlPath := filepath.Join(dir, ".run", "devmtls-go.run.xml")
	first, err := os.ReadFile(xmlPath)
	if err != nil {
		t.Fatal(err)
	}
	var run struct {
		Configuration struct {
			Envs []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"envs>env"`
		} `xml:"configuration"`
	}
	if err := xml.Unmarshal(first, &run); err != nil {
		t.Fatalf("%s does not parse: %v\n%s", xmlPath, err, first)
	}
	jb := map[string]string{}
	for _, e := range run.Configuration.Envs {
		jb[e.Name] = e.Value
	}
	for _, name := range forwardVarNames {
		if jb[name] != want[name] {
			t.Errorf("%s: %s=%q, want %q", xmlPath, name, jb[name], want[name])
		}
	}
	if jb["MTLS_CERT"] != "$PROJECT_DIR$/.devmtls/cert" {
		t.Errorf("%s: MTLS_CERT=%q beside the forwards", xmlPath, jb["MTLS_CERT"])
	}

	mustCLI(t, "ide", "vscode", "--lang", "go")
	launchPath := filepath.Join(dir, ".vscode", "launch.json")
	launch, err := os.ReadFile(launchPath)
	if err != nil {
		t.Fatal(err)
	}
	std, err := hujson.Standardize(bytes.Clone(launch))
	if err != nil {
		t.Fatalf("%s does not parse: %v", launchPath, err)
	}
	var doc struct {
		Configurations []struct {
			Name string            `json:"name"`
			Env  map[string]string `json:"env"`
		} `json:"configurations"`
	}
	if err := json.Unmarshal(std, &doc); err != nil {
		t.Fatal(err)
	}
	var vs map[string]string
	for _, c := range doc.Configurations {
		if c.Name == "devmtls: Go" {
			vs = c.Env
		}
	}
	if vs == nil {
		t.Fatalf("%s has no configuration devmtls: Go:\n%s", launchPath, launch)
	}
	for _, name := range forwardVarNames {
		if vs[name] != want[name] {
			t.Errorf("%s: %s=%q, want %q", launchPath, name, vs[name], want[name])
		}
	}

	// The ports are recorded: running jetbrains again changes nothing.
	mustCLI(t, "ide", "jetbrains", "--lang", "go")
	if again, _ := os.ReadFile(xmlPath); !bytes.Equal(first, again) {
		t.Errorf("second devmtls ide jetbrains changed %s:\n%s\nthen:\n%s", xmlPath, first, again)
	}
}
