package main

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestTakeWaitFlags(t *testing.T) {
	for _, c := range []struct {
		args    []string
		rest    []string
		wait    bool
		timeout time.Duration
	}{
		{[]string{"--wait"}, []string{}, true, 0},
		{[]string{"-d", "--wait", "--wait-timeout", "30", "api"}, []string{"-d", "api"}, true, 30 * time.Second},
		{[]string{"--wait-timeout=5", "--wait", "--build"}, []string{"--build"}, true, 5 * time.Second},
		{[]string{"--build", "api"}, []string{"--build", "api"}, false, 0},
		// After "--" everything belongs to someone else.
		{[]string{"api", "--", "--wait"}, []string{"api", "--", "--wait"}, false, 0},
	} {
		rest, wait, timeout, err := takeWaitFlags(c.args)
		if err != nil || !slices.Equal(rest, c.rest) || wait != c.wait || timeout != c.timeout {
			t.Errorf("takeWaitFlags(%q) = %q %v %v %v; want %q %v %v", c.args, rest, wait, timeout, err, c.rest, c.wait, c.timeout)
		}
	}
	for _, bad := range [][]string{{"--wait", "--wait-timeout"}, {"--wait-timeout=soon"}, {"--wait-timeout", "-1"}} {
		var ce *codedError
		if _, _, _, err := takeWaitFlags(bad); !errors.As(err, &ce) || ce.code != exitUsage {
			t.Errorf("takeWaitFlags(%q): %v, want a usage error", bad, err)
		}
	}
}

func TestDetachedByWait(t *testing.T) {
	for args, want := range map[string]bool{"--wait": true, "--wait-timeout=3": true, "-d": true, "--build": false} {
		if got := detached([]string{args}); got != want {
			t.Errorf("detached(%q) = %v, want %v", args, got, want)
		}
	}
}
