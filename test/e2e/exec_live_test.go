package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
)

// TestExecForwardsFollowRotation is the README's promise for the forwards
// `devmtls exec` serves itself (issue 14): while exec's command runs, another
// devmtls process rotates the dev credentials; within 2 s a client with the
// new keypair is served through the command's PRICING_ADDR and one with the
// old keypair is refused, without a restart, while a connection opened
// before the rotation keeps echoing. A SIGTERM then ends the command and exec
// with it, forwards included.
func TestExecForwardsFollowRotation(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "pricing", 1, "echo")

	project := t.TempDir()
	writeTestFile(t, filepath.Join(project, "compose.yaml"), fmt.Sprintf(`x-devmtls:
  forwards:
    - target: svc/pricing
      namespace: %s
      ports: ["443"]
services:
  app:
    image: busybox
`, s.ns))
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, devmtlsBin, "exec", "--", "sh", "-c", `echo "$PRICING_ADDR" > "$1"; exec sleep 600`, "sh", addrFile)
	cmd.Dir = project
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.c.kubeconfig, "DEVMTLS_DIR=")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// A group of its own, so a failing test kills the command (sleep) too;
	// it holds exec's output pipe, which Wait would otherwise wait for.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})

	// The command writes the address once exec has set its variables, after
	// the forwards listen.
	var addr string
	for deadline := time.Now().Add(3 * time.Minute); addr == ""; time.Sleep(50 * time.Millisecond) {
		data, _ := os.ReadFile(addrFile)
		if line, ok := strings.CutSuffix(string(data), "\n"); ok {
			if addr = line; addr == "" {
				t.Fatalf("devmtls exec gave its command no PRICING_ADDR:\n%s", out)
			}
		}
		select {
		case <-exited:
			t.Fatalf("devmtls exec ended before its command wrote PRICING_ADDR: %v\n%s", waitErr, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("devmtls exec's command never wrote PRICING_ADDR:\n%s", out)
		}
	}
	envDir := filepath.Join(project, ".devmtls")
	old, err := (&certs.Store{Dir: envDir}).Load(ctx)
	if err != nil {
		t.Fatalf("the credentials devmtls exec made: %v\n%s", err, out)
	}
	if err := roundTrip(addr, old.ClientConfig(old.Top, "localhost")); err != nil {
		t.Fatalf("through PRICING_ADDR %s with the dev keypair: %v\n%s", addr, err, out)
	}

	// A connection opened before the rotation, which must outlive it.
	kept, err := tls.Dial("tcp", addr, old.ClientConfig(old.Top, "localhost"))
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	echo := func(msg string) error {
		kept.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := kept.Write([]byte(msg)); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(kept, got); err != nil {
			return err
		}
		if !bytes.Equal(got, []byte(msg)) {
			return fmt.Errorf("echoed %q, sent %q", got, msg)
		}
		return nil
	}
	if err := echo("before"); err != nil {
		t.Fatalf("the connection kept open: %v\n%s", err, out)
	}

	rotated := rotateFromAnotherProcess(t, envDir)
	if rotated.Fingerprint == old.Fingerprint {
		t.Fatal("devmtls certs rotate kept the keypair")
	}
	within(t, liveWithin, "a connection with the new keypair through exec's forward", func() error {
		return roundTrip(addr, rotated.ClientConfig(rotated.Top, "localhost"))
	})
	// The old keypair, trusting the new anchor, so only the forward can
	// refuse it.
	oldClient := old.ClientConfig(old.Top, "localhost")
	oldClient.RootCAs = rotated.Pool()
	if err := roundTrip(addr, oldClient); err == nil {
		t.Fatalf("after the rotation, exec's forward served a client holding the old keypair\n%s", out)
	}
	if err := echo("after the rotation"); err != nil {
		t.Fatalf("the connection opened before the rotation: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "serving new dev credentials") {
		t.Errorf("devmtls exec did not say its forward switched:\n%s", out)
	}

	// exec passes SIGTERM on to its command and exits with it (128+15),
	// taking the forwards along.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if ee, ok := waitErr.(*exec.ExitError); !ok || ee.ExitCode() != 128+int(syscall.SIGTERM) {
			t.Errorf("devmtls exec after SIGTERM: %v, want exit status %d\n%s", waitErr, 128+int(syscall.SIGTERM), out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("devmtls exec did not exit within 30s of SIGTERM:\n%s", out)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after devmtls exec exited", addr)
	}
}
