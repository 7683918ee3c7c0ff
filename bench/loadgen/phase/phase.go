// Package phase is what the bench's load generators (bench/loadgen for REST, bench/grpcload for
// gRPC) share: running calls from C workers for a count or a time budget, timing each, and the JSON
// line that reports the timed phase.
package phase

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Result is the JSON line a generator prints at the end; it describes the timed phase only.
type Result struct {
	Requests   int     `json:"requests"` // attempted, errors included
	Errors     int     `json:"errors"`   // calls that failed (transport errors, unexpected answers)
	FirstError string  `json:"first_error"`
	Wall       float64 `json:"wall_s"`
	RPS        float64 `json:"rps"` // successful calls per second
	P50        Millis  `json:"p50_ms"`
	P90        Millis  `json:"p90_ms"`
	P99        Millis  `json:"p99_ms"`
	CPU        float64 `json:"cpu_s"` // this process, user + system
}

// Millis is a latency in ms; JSON has no NaN, so a percentile of no samples prints as null.
type Millis float64

func (m Millis) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(m)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(m))
}

// Phase counts and times one run of calls over the workers.
type Phase struct {
	left      atomic.Int64 // calls not yet started; only used when a count is set
	counted   bool
	deadline  time.Time // zero: none
	errors    atomic.Int64
	errOnce   sync.Once
	firstErr  string
	latencies [][]time.Duration // one slice per worker, merged at the end
	wall      time.Duration
}

func (p *Phase) fail(err string) {
	p.errors.Add(1)
	p.errOnce.Do(func() { p.firstErr = err })
}

func (p *Phase) next() bool {
	if !p.deadline.IsZero() && time.Now().After(p.deadline) {
		return false
	}
	return !p.counted || p.left.Add(-1) >= 0
}

// Run makes calls (requests <= 0: no count) from `workers` goroutines, each calling call(its index)
// back to back, until the count or the budget (0: none) runs out.
func Run(workers, requests int, budget time.Duration, call func(worker int) error) *Phase {
	p := &Phase{counted: requests > 0, latencies: make([][]time.Duration, workers)}
	p.left.Store(int64(requests))
	start := time.Now()
	if budget > 0 {
		p.deadline = start.Add(budget)
	}
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p.next() {
				t := time.Now()
				if err := call(i); err != nil {
					p.fail(err.Error())
					continue
				}
				p.latencies[i] = append(p.latencies[i], time.Since(t))
			}
		}()
	}
	wg.Wait()
	p.wall = time.Since(start)
	return p
}

// percentile is nearest-rank (q in 0..100) over sorted values, in ms; NaN for none.
func percentile(sorted []time.Duration, q float64) Millis {
	if len(sorted) == 0 {
		return Millis(math.NaN())
	}
	i := int(math.Ceil(q/100*float64(len(sorted)))) - 1
	i = max(0, min(len(sorted)-1, i))
	return Millis(float64(sorted[i]) / float64(time.Millisecond))
}

// CPUSeconds is this process's CPU time so far, user + system.
func CPUSeconds() float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return math.NaN()
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()).Seconds()
}

// Summarize is the phase's Result, with the CPU it took (seconds).
func (p *Phase) Summarize(cpu float64) Result {
	var all []time.Duration
	for _, l := range p.latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	errors := int(p.errors.Load())
	r := Result{
		Requests: len(all) + errors, Errors: errors, FirstError: p.firstErr, Wall: p.wall.Seconds(),
		P50: percentile(all, 50), P90: percentile(all, 90), P99: percentile(all, 99), CPU: cpu,
	}
	if p.wall > 0 {
		r.RPS = float64(len(all)) / p.wall.Seconds()
	}
	return r
}

// Timed runs the warm-up (when warmup > 0, with a quarter of the budget), tells the caller on
// stderr through cue that the timed phase starts (its moment to read other processes' CPU), runs
// that phase and returns its Result.
func Timed(workers, warmup, requests int, budget time.Duration, cue func(), call func(worker int) error) Result {
	if warmup > 0 {
		Run(workers, warmup, budget/4, call)
	}
	cue()
	before := CPUSeconds()
	p := Run(workers, requests, budget, call)
	return p.Summarize(CPUSeconds() - before)
}

// Common is the flags both generators take, beside their own target's.
type Common struct {
	Requests    int
	Concurrency int
	Budget      time.Duration
	Warmup      int
	Timeout     time.Duration
	Procs       int
}

// Register adds the common flags to fs; `unit` names what one call is ("requests", "calls").
func (c *Common) Register(fs *flag.FlagSet, unit string) {
	fs.IntVar(&c.Requests, "n", 1000, unit+" in the timed phase (0: no limit, -duration must be set)")
	fs.IntVar(&c.Concurrency, "c", 16, unit+" in flight at a time, one per worker")
	fs.DurationVar(&c.Budget, "duration", 0, "no new one starts after this long (0: no limit)")
	fs.IntVar(&c.Warmup, "warmup", 0, "untimed "+unit+" first, on the same connections")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "per call")
	// One P keeps the hand-offs between a call's goroutine and its connection's reader and writer on
	// one thread (no futex wake-ups): about a quarter less CPU per call at a few thousand per second.
	fs.IntVar(&c.Procs, "procs", 1, "GOMAXPROCS")
}

// Check says what is wrong with the common flags, if anything.
func (c *Common) Check() error {
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("-c must be at least 1")
	case c.Requests <= 0 && c.Budget <= 0:
		return fmt.Errorf("set -n or -duration")
	}
	return nil
}
