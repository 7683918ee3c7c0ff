// Command loadgen POSTs one fixed body to one URL, N times (or for a time budget) at concurrency C,
// and prints one JSON line: counts, the first error, wall time, rps, latency percentiles and its own
// CPU time. It exists so the benchmark's load costs a few percent of a core instead of the ~0.9 core
// the Python generator takes, which on a 2-core machine hides whether the gateway scales.
//
// Each worker has its own HTTP/1.1 keep-alive connection (a transport of its own, capped at one
// connection), so SO_REUSEPORT can spread the C connections over the gateway's workers, and a
// connection is opened once (in the warm-up, when there is one) and then reused.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	url         string
	body        []byte
	requests    int
	concurrency int
	budget      time.Duration
	warmup      int
	timeout     time.Duration
	procs       int
}

// Result is the JSON line printed at the end; it describes the timed phase only (not the warm-up).
type Result struct {
	Requests   int     `json:"requests"` // attempted, errors included
	Errors     int     `json:"errors"`   // transport errors and non-200 answers
	FirstError string  `json:"first_error"`
	Wall       float64 `json:"wall_s"`
	RPS        float64 `json:"rps"` // successful requests per second
	P50        millis  `json:"p50_ms"`
	P90        millis  `json:"p90_ms"`
	P99        millis  `json:"p99_ms"`
	CPU        float64 `json:"cpu_s"` // this process, user + system
}

func parseFlags(args []string) (config, error) {
	var c config
	var body string
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&c.url, "url", "", "the URL to POST to (required)")
	fs.StringVar(&body, "body", "{}", "the JSON request body, sent as is")
	fs.IntVar(&c.requests, "n", 1000, "requests in the timed phase (0: no limit, -duration must be set)")
	fs.IntVar(&c.concurrency, "c", 16, "workers, each with its own connection")
	fs.DurationVar(&c.budget, "duration", 0, "no new request starts after this long (0: no limit)")
	fs.IntVar(&c.warmup, "warmup", 0, "untimed requests first, on the same connections")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "per request")
	// One P keeps the hand-offs between a request's goroutine and its connection's reader and writer
	// on one thread (no futex wake-ups): about a quarter less CPU per request at a few thousand rps.
	fs.IntVar(&c.procs, "procs", 1, "GOMAXPROCS")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.body = []byte(body)
	switch {
	case c.url == "":
		return c, fmt.Errorf("-url is required")
	case c.concurrency < 1:
		return c, fmt.Errorf("-c must be at least 1")
	case c.requests <= 0 && c.budget <= 0:
		return c, fmt.Errorf("set -n or -duration")
	}
	return c, nil
}

func newClient(timeout time.Duration) *http.Client {
	transport := &http.Transport{
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true, // the body is read raw, as the Python generator does
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: transport, Timeout: timeout}
}

// phase counts and times one run of requests over the workers' clients.
type phase struct {
	left      atomic.Int64 // requests not yet started; only used when a count is set
	counted   bool
	deadline  time.Time // zero: none
	errors    atomic.Int64
	errOnce   sync.Once
	firstErr  string
	latencies [][]time.Duration // one slice per worker, merged at the end
}

func (p *phase) fail(err string) {
	p.errors.Add(1)
	p.errOnce.Do(func() { p.firstErr = err })
}

func (p *phase) next() bool {
	if !p.deadline.IsZero() && time.Now().After(p.deadline) {
		return false
	}
	return !p.counted || p.left.Add(-1) >= 0
}

func post(client *http.Client, url string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	// Read to the end, so the connection goes back to its idle pool and is reused.
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, data)
	}
	return nil
}

// run sends requests (<= 0: no count) from every client until the count or the budget runs out.
func run(c config, clients []*http.Client, requests int, budget time.Duration) (*phase, time.Duration) {
	p := &phase{counted: requests > 0, latencies: make([][]time.Duration, len(clients))}
	p.left.Store(int64(requests))
	start := time.Now()
	if budget > 0 {
		p.deadline = start.Add(budget)
	}
	var wg sync.WaitGroup
	for i, client := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p.next() {
				t := time.Now()
				if err := post(client, c.url, c.body); err != nil {
					p.fail(err.Error())
					continue
				}
				p.latencies[i] = append(p.latencies[i], time.Since(t))
			}
		}()
	}
	wg.Wait()
	return p, time.Since(start)
}

// percentile is nearest-rank (q in 0..100) over sorted values, in ms; NaN for none.
func percentile(sorted []time.Duration, q float64) millis {
	if len(sorted) == 0 {
		return millis(math.NaN())
	}
	i := int(math.Ceil(q/100*float64(len(sorted)))) - 1
	i = max(0, min(len(sorted)-1, i))
	return millis(float64(sorted[i]) / float64(time.Millisecond))
}

func cpuSeconds() float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return math.NaN()
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()).Seconds()
}

func summarize(p *phase, wall time.Duration, cpu float64) Result {
	var all []time.Duration
	for _, l := range p.latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	errors := int(p.errors.Load())
	r := Result{
		Requests: len(all) + errors, Errors: errors, FirstError: p.firstErr, Wall: wall.Seconds(),
		P50: percentile(all, 50), P90: percentile(all, 90), P99: percentile(all, 99), CPU: cpu,
	}
	if wall > 0 {
		r.RPS = float64(len(all)) / wall.Seconds()
	}
	return r
}

// millis is a latency in ms; JSON has no NaN, so a percentile of no samples prints as null.
type millis float64

func (m millis) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(m)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(m))
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	runtime.GOMAXPROCS(c.procs)
	clients := make([]*http.Client, c.concurrency)
	for i := range clients {
		clients[i] = newClient(c.timeout)
	}
	if c.warmup > 0 {
		run(c, clients, c.warmup, c.budget/4)
	}
	// The caller's cue to read the other processes' CPU counters: the timed phase starts now.
	fmt.Fprintln(os.Stderr, "loadgen: timed phase starts")
	before := cpuSeconds()
	p, wall := run(c, clients, c.requests, c.budget)
	line, err := json.Marshal(summarize(p, wall, cpuSeconds()-before))
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	fmt.Println(string(line))
}
