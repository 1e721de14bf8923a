package health

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// onDisposableThread runs fn on a goroutine locked to an OS thread that Go
// discards when fn returns, for work that changes its thread for good
// (joins a namespace or a cgroup v1, sets no_new_privs): the goroutine ends
// without unlocking, and Go then terminates the thread instead of giving it
// other goroutines. It returns at once; fn reports its results itself.
//
// The one thread Go does not terminate is the main thread: a goroutine
// that ends locked to it leaves it parked, and it would carry the change
// (and /proc/PID/ns/* and /proc/PID/cgroup, which show the main thread,
// would report the box's namespaces and cgroups as the supervisor's). So
// when the goroutine lands on the main thread it keeps that thread locked,
// untouched, while fn runs on another goroutine, which therefore cannot
// land there, and gives it back afterwards.
func onDisposableThread(fn func()) {
	go runDisposable(fn, isMainThread)
}

func runDisposable(fn func(), onMain func() bool) {
	runtime.LockOSThread() // not unlocked unless this is the main thread
	if !onMain() {
		fn()
		return
	}
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked
		defer close(done)
		fn()
	}()
	<-done
	runtime.UnlockOSThread()
}

func isMainThread() bool { return unix.Gettid() == unix.Getpid() }
