// The typical untrusted download: a static Go binary. Go's runtime issues raw syscalls
// (no libc), runs goroutines on small stacks, preempts them with signals (SIGURG) and
// locates itself through /proc/self/exe.
//
// Usage: goprog              prints key=value lines (see main)
//        goprog child        prints os.Hostname() (run by the parent through os/exec)
//        goprog spawnstress  starts processes from many goroutines at once (see spawn.go)
package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "goprog:", err)
		os.Exit(1)
	}
}

func check(key string, ok bool) {
	if ok {
		fmt.Printf("%s=ok\n", key)
	} else {
		fmt.Printf("%s=FAILED\n", key)
	}
}

func cstring(b []int8) string {
	s := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "spawnstress" {
		spawnStress()
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "child" {
		host, err := os.Hostname()
		must(err)
		fmt.Println(host)
		return
	}

	// os.Hostname reads /proc/sys/kernel/hostname; syscall.Uname is the raw uname call.
	host, err := os.Hostname()
	must(err)
	fmt.Printf("hostname=%s\n", host)
	var uts syscall.Utsname
	must(syscall.Uname(&uts))
	fmt.Printf("uname=%s\n", cstring(uts.Nodename[:]))

	fmt.Printf("unix=%d\n", time.Now().Unix())

	// crypto/rand reads getrandom(2).
	random := make([]byte, 16)
	_, err = rand.Read(random)
	must(err)
	fmt.Printf("rand=%s\n", hex.EncodeToString(random))

	exe, err := os.Executable()
	must(err)
	fmt.Printf("exe=%s\n", exe)

	// Goroutines making redirected calls at the same time, with allocation and GC in between.
	var wg sync.WaitGroup
	var bad int32
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 300; j++ {
				var u syscall.Utsname
				if syscall.Uname(&u) != nil || cstring(u.Nodename[:]) != host {
					atomic.AddInt32(&bad, 1)
				}
				if j%50 == 0 {
					if h, err := os.Hostname(); err != nil || h != host {
						atomic.AddInt32(&bad, 1)
					}
					_ = make([]byte, 1<<16)
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()
	runtime.GC()
	check("goroutines", bad == 0)

	// Asynchronous preemption: with one P, main can only wake from its sleep if the runtime
	// preempts the spinning goroutine with a signal (the loop has no preemption point).
	prev := runtime.GOMAXPROCS(1)
	var stop int32
	done := make(chan struct{})
	go func() {
		for atomic.LoadInt32(&stop) == 0 {
		}
		close(done)
	}()
	time.Sleep(20 * time.Millisecond)
	atomic.StoreInt32(&stop, 1)
	<-done
	runtime.GOMAXPROCS(prev)
	check("preemption", true)

	// Monotonic time through time.Since, and timers.
	start := time.Now()
	time.Sleep(30 * time.Millisecond)
	check("sleep", time.Since(start) >= 30*time.Millisecond)

	// Children through os/exec (clone + execve from a multi-threaded runtime).
	out, err := exec.Command(os.Args[0], "child").Output()
	must(err)
	fmt.Printf("child=%s\n", strings.TrimSpace(string(out)))
	out, err = exec.Command("uname", "-n").Output()
	must(err)
	fmt.Printf("uname_command=%s\n", strings.TrimSpace(string(out)))
}
