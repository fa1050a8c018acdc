// Command echoserver is the workload the test cluster's end-to-end tests
// run as pods: a TCP server that echoes every byte back. At start it prints
// its identity and selected environment variables, so tests can check via
// `kubectl logs` what the kubelet gave the process.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	listen := flag.String("listen", "", "address to listen on, e.g. $(POD_IP):8080")
	var show multi
	flag.Var(&show, "print-env", "environment variable to print at start; repeatable")
	flag.Parse()

	wd, _ := os.Getwd()
	fmt.Printf("uid=%d gid=%d cwd=%s args=%q\n", os.Getuid(), os.Getgid(), wd, os.Args[1:])
	for _, name := range show {
		fmt.Printf("env %s=%s\n", name, os.Getenv(name))
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())

	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		<-ch
		fmt.Println("SIGTERM received, exiting")
		os.Exit(0)
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			defer conn.Close()
			_, _ = io.Copy(conn, conn)
			_ = conn.(*net.TCPConn).CloseWrite()
		}()
	}
}

type multi []string

func (m *multi) String() string     { return fmt.Sprint(*m) }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }
