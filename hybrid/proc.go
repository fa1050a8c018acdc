package hybrid

// process is a process proven to be the environment's forwards process; it is
// signalled through a handle that cannot reach another process given the same
// PID later, where the platform has one.
type process interface {
	terminate() error // ask it to stop (SIGTERM)
	kill()            // make it stop
	exited() bool     // it has ended (a zombie has)
	release()
}
