package portforward

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EventKind says what happened to a forward.
type EventKind string

// The kinds of Event.
const (
	// EventListening: a listener is bound (Local is its address).
	EventListening EventKind = "listening"
	// EventOpened: a local connection reached its pod.
	EventOpened EventKind = "opened"
	// EventClosed: a connection that was opened ended; BytesSent and
	// BytesReceived count its plaintext, Error says why it ended badly.
	EventClosed EventKind = "closed"
	// EventPodSwitched: new connections go to other pods than before (Pod
	// is the pod, or the Ready pods, they go to now).
	EventPodSwitched EventKind = "pod-switched"
	// EventError: something failed; logged once per distinct cause.
	EventError EventKind = "error"
	// EventLog: any other diagnostic, in Message.
	EventLog EventKind = "log"
)

// Event is one thing that happened to a forward, for Options.Events.
type Event struct {
	Time time.Time `json:"time"`
	Kind EventKind `json:"kind"`
	// Name is the forward's name when the caller serves named forwards
	// (x-devmtls.forwards' as); the Forwarder leaves it empty.
	Name   string `json:"name,omitempty"`
	Target string `json:"target,omitempty"`
	Pod    string `json:"pod,omitempty"`
	// Local is the listener's address; Client the local client's.
	Local  string `json:"local,omitempty"`
	Client string `json:"client,omitempty"`
	// Remote is where the connection goes: NAMESPACE/POD:PORT once a pod is
	// chosen, else the target's remote port.
	Remote string `json:"remote,omitempty"`
	// BytesSent went from the local client to the pod, BytesReceived back.
	BytesSent     int64  `json:"bytes_sent,omitempty"`
	BytesReceived int64  `json:"bytes_received,omitempty"`
	Error         string `json:"error,omitempty"`
	Message       string `json:"message,omitempty"`
}

// Event log formats for NewEventLogger.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// NewEventLogger returns an Options.Events that writes one line per event to
// w: "text" (the default for "") is a timestamp, the kind and key=value pairs;
// "json" is one JSON object per line. Lines from concurrent events never
// interleave.
func NewEventLogger(w io.Writer, format string) (func(Event), error) {
	var mu sync.Mutex
	switch strings.ToLower(format) {
	case LogFormatText, "":
		return func(e Event) {
			line := formatText(e)
			mu.Lock()
			defer mu.Unlock()
			io.WriteString(w, line)
		}, nil
	case LogFormatJSON:
		return func(e Event) {
			if e.Time.IsZero() {
				e.Time = time.Now()
			}
			b, err := json.Marshal(e)
			if err != nil {
				return // an Event has only strings, numbers and a time
			}
			mu.Lock()
			defer mu.Unlock()
			w.Write(append(b, '\n'))
		}, nil
	}
	return nil, fmt.Errorf("unknown log format %q: use text or json", format)
}

// formatText is one text line: time, kind, then the fields that are set;
// values with spaces are quoted.
func formatText(e Event) string {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	var b strings.Builder
	b.WriteString(e.Time.Format(time.RFC3339))
	if e.Kind == EventLog && e.Target == "" {
		// A plain diagnostic reads as the sentence it is.
		if e.Name != "" {
			b.WriteString(" " + e.Name + ":")
		}
		b.WriteString(" " + e.Message + "\n")
		return b.String()
	}
	b.WriteByte(' ')
	b.WriteString(string(e.Kind))
	field := func(k, v string) {
		if v == "" {
			return
		}
		if strings.ContainsAny(v, " \"=\t\n") {
			v = strconv.Quote(v)
		}
		b.WriteString(" " + k + "=" + v)
	}
	field("name", e.Name)
	field("target", e.Target)
	field("pod", e.Pod)
	field("local", e.Local)
	field("client", e.Client)
	field("remote", e.Remote)
	if e.Kind == EventClosed {
		field("sent", strconv.FormatInt(e.BytesSent, 10))
		field("received", strconv.FormatInt(e.BytesReceived, 10))
	}
	field("error", e.Error)
	field("message", e.Message)
	b.WriteByte('\n')
	return b.String()
}

// emit delivers an event to Options.Events, stamping its time.
func (f *Forwarder) emit(e Event) {
	if f.opts.Events == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	f.opts.Events(e)
}
