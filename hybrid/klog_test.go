package hybrid

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/portforward"
	"github.com/go-logr/logr"
)

// TestKlogSinkWritesEvents: what client-go logs becomes one event per record,
// which the JSON event logger writes as one parseable line.
func TestKlogSinkWritesEvents(t *testing.T) {
	var b strings.Builder
	events, err := portforward.NewEventLogger(&b, "json")
	if err != nil {
		t.Fatal(err)
	}
	log := logr.New(&klogSink{events: events}).WithName("reflector").WithValues("type", "*v1.Pod")
	log.Info("watch ended\nwith a newline", "reason", "EOF")
	log.Error(errors.New("connection refused"), "failed to list")
	log.V(4).Info("too detailed")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines; want 2:\n%s", len(lines), b.String())
	}
	var info, failed portforward.Event
	if err := json.Unmarshal([]byte(lines[0]), &info); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &failed); err != nil {
		t.Fatal(err)
	}
	if info.Kind != portforward.EventLog || info.Message != "client-go/reflector: watch ended\nwith a newline type=*v1.Pod reason=EOF" {
		t.Errorf("info event %+v", info)
	}
	if failed.Kind != portforward.EventError || failed.Error != "connection refused" || !strings.HasPrefix(failed.Message, "client-go/reflector: failed to list") {
		t.Errorf("error event %+v", failed)
	}
}
