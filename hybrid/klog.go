package hybrid

import (
	"fmt"
	"slices"
	"strings"

	"github.com/devmtls/devmtls/portforward"
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// routeKlog sends what client-go logs through klog (a watch that failed, a
// throttled request) to the forwards' event log, so that with
// DEVMTLS_LOG_FORMAT=json every line of the log is a JSON event: klog
// writes its own text format to stderr otherwise, and stderr is the log.
// klog's logger is process-wide; the background process is the one process
// whose log this is, so Run sets it once at its start.
func routeKlog(events func(portforward.Event)) {
	klog.SetLogger(logr.New(&klogSink{events: events}))
}

// klogSink is a logr.LogSink writing each record as one Event.
type klogSink struct {
	events func(portforward.Event)
	name   string
	values []any
}

func (s *klogSink) Init(logr.RuntimeInfo) {}

// Enabled passes what klog lets through at its default verbosity only.
func (s *klogSink) Enabled(level int) bool { return level <= 0 }

func (s *klogSink) Info(_ int, msg string, kv ...any) {
	s.events(portforward.Event{Kind: portforward.EventLog, Message: s.format(msg, kv)})
}

func (s *klogSink) Error(err error, msg string, kv ...any) {
	e := portforward.Event{Kind: portforward.EventError, Message: s.format(msg, kv)}
	if err != nil {
		e.Error = err.Error()
	}
	s.events(e)
}

func (s *klogSink) WithValues(kv ...any) logr.LogSink {
	c := *s
	c.values = append(slices.Clone(s.values), kv...)
	return &c
}

func (s *klogSink) WithName(name string) logr.LogSink {
	c := *s
	if c.name != "" {
		c.name += "/"
	}
	c.name += name
	return &c
}

// format is "client-go[/NAME]: MSG key=value…".
func (s *klogSink) format(msg string, kv []any) string {
	var b strings.Builder
	b.WriteString("client-go")
	if s.name != "" {
		b.WriteString("/" + s.name)
	}
	b.WriteString(": " + strings.TrimSpace(msg))
	all := append(slices.Clone(s.values), kv...)
	for i := 0; i+1 < len(all); i += 2 {
		fmt.Fprintf(&b, " %v=%v", all[i], all[i+1])
	}
	return b.String()
}
