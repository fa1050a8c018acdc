// Command devmtls lets mTLS-only services run locally — in Docker Compose, on
// the host, from an IDE — and talk to services in a Kubernetes test cluster,
// without anyone disabling mTLS.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/sirupsen/logrus"
)

func main() {
	// compose-go logs its warnings (an obsolete version:, several compose
	// files found) through logrus; the compose child devmtls runs reports its
	// own, so devmtls keeps quiet instead of printing them twice.
	logrus.SetLevel(logrus.ErrorLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile(os.Getenv("DEVMTLS_CPUPROFILE"))
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopProfile()
	os.Exit(report(err, os.Stderr))
}

// startProfile writes a CPU profile to path for the whole run, so a slow
// forward can be diagnosed with `go tool pprof`; "" disables it.
func startProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "devmtls: DEVMTLS_CPUPROFILE: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "devmtls: DEVMTLS_CPUPROFILE: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// run is the whole command behind main, so tests drive the real CLI in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// report prints err (if it has anything to say) and returns the exit code.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	code, msg := exitCodeOf(err)
	if msg != "" {
		fmt.Fprintf(stderr, "devmtls: %s\n", msg)
	}
	return code
}
