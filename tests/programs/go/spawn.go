package main

// Goroutines keep canaries on their stacks while others start processes: Go's os/exec child
// (clone with CLONE_VM|CLONE_VFORK) runs on the calling goroutine's stack, in the parent's
// memory, so whatever handles its execve must not write below that stack pointer.

import (
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

var corrupted int64

//go:noinline
func hold(depth int, seed uint64, stop *int32) {
	var a [32]uint64
	for i := range a {
		a[i] = seed*1000003 + uint64(i)
	}
	if depth > 0 {
		hold(depth-1, seed+1, stop)
	} else {
		for atomic.LoadInt32(stop) == 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	for i := range a {
		if a[i] != seed*1000003+uint64(i) {
			atomic.AddInt64(&corrupted, 1)
			return
		}
	}
}

//go:noinline
func spawn(depth int) error {
	var pad [16]uint64
	if depth > 0 {
		err := spawn(depth - 1)
		pad[0]++
		return err
	}
	return exec.Command("/bin/true").Run()
}

// spawnStress starts 320 processes from 8 goroutines while 200 others hold canaries, and
// prints how many starts failed and how many stacks were overwritten.
func spawnStress() {
	var stop int32
	var holders sync.WaitGroup
	for g := 0; g < 200; g++ {
		holders.Add(1)
		go func(g int) { defer holders.Done(); hold(g%40, uint64(g)<<20, &stop) }(g)
	}
	var errs int64
	var spawners sync.WaitGroup
	for g := 0; g < 8; g++ {
		spawners.Add(1)
		go func(g int) {
			defer spawners.Done()
			for i := 0; i < 40; i++ {
				if err := spawn((g*7 + i) % 50); err != nil {
					atomic.AddInt64(&errs, 1)
				}
			}
		}(g)
	}
	spawners.Wait()
	atomic.StoreInt32(&stop, 1)
	holders.Wait()
	fmt.Printf("spawn_errors=%d\ncorrupted_stacks=%d\n", errs, corrupted)
}
