// Command grpcload makes N unary CreateResponse calls (or calls for a time budget) at concurrency C
// over one gRPC channel, as a grpc client normally does, and prints one JSON line with the same
// fields as bench/loadgen: counts, the first error, wall time, rps, latency percentiles and its own
// CPU time. It is the gRPC half of the bench's saturated lines: light enough (Go, one P) that one
// gateway worker, not the load generator, is what runs out of CPU.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/responses-gateway/responses-gateway/clients/go/gateway"
	pb "github.com/responses-gateway/responses-gateway/clients/go/responsesgatewayv1"
)

type config struct {
	target       string
	model        string
	instructions string
	input        string
	requests     int
	concurrency  int
	conns        int
	budget       time.Duration
	warmup       int
	timeout      time.Duration
	procs        int
}

// Result is the JSON line printed at the end; it describes the timed phase only (not the warm-up).
type Result struct {
	Requests   int     `json:"requests"` // attempted, errors included
	Errors     int     `json:"errors"`   // calls that failed, or answered without a completed response
	FirstError string  `json:"first_error"`
	Wall       float64 `json:"wall_s"`
	RPS        float64 `json:"rps"` // successful calls per second
	P50        millis  `json:"p50_ms"`
	P90        millis  `json:"p90_ms"`
	P99        millis  `json:"p99_ms"`
	CPU        float64 `json:"cpu_s"` // this process, user + system
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("grpcload", flag.ContinueOnError)
	fs.StringVar(&c.target, "target", "", "the gateway's gRPC address, host:port (required)")
	fs.StringVar(&c.model, "model", "bench-gpt", "the request's model")
	// The defaults are the bench's request body (bench/__main__.py `_body`), so REST and gRPC carry
	// the same request.
	fs.StringVar(&c.instructions, "instructions", "You are a terse assistant.", "the request's instructions")
	fs.StringVar(&c.input, "input", "Say hello and offer help in one short sentence.", "the one user message")
	fs.IntVar(&c.requests, "n", 1000, "calls in the timed phase (0: no limit, -duration must be set)")
	fs.IntVar(&c.concurrency, "c", 16, "calls in flight at a time")
	fs.IntVar(&c.conns, "conns", 1, "channels (each its own HTTP/2 connection); call i uses channel i mod conns")
	fs.DurationVar(&c.budget, "duration", 0, "no new call starts after this long (0: no limit)")
	fs.IntVar(&c.warmup, "warmup", 0, "untimed calls first, on the same channels")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "per call")
	// One P, as in bench/loadgen: the hand-offs between a call's goroutine and the transport's
	// reader and writer stay on one thread, which keeps the generator's CPU per call low.
	fs.IntVar(&c.procs, "procs", 1, "GOMAXPROCS")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.target == "":
		return c, fmt.Errorf("-target is required")
	case c.concurrency < 1:
		return c, fmt.Errorf("-c must be at least 1")
	case c.conns < 1:
		return c, fmt.Errorf("-conns must be at least 1")
	case c.requests <= 0 && c.budget <= 0:
		return c, fmt.Errorf("set -n or -duration")
	}
	return c, nil
}

func request(c config) *pb.CreateResponseRequest {
	return &pb.CreateResponseRequest{
		Model:        proto.String(c.model),
		Instructions: proto.String(c.instructions),
		Input:        gateway.ItemsInput(gateway.UserMessage(c.input)),
		Temperature:  proto.Float64(1.0),
	}
}

// phase counts and times one run of calls over the workers.
type phase struct {
	left      atomic.Int64 // calls not yet started; only used when a count is set
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

// upperSnake turns a Go code name (NotFound) into the canonical one of the gRPC spec (NOT_FOUND).
func upperSnake(name string) string {
	var b strings.Builder
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) && unicode.IsLower(rune(name[i-1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// describe names a failed call by its gRPC status and, when the gateway sent one, its ErrorInfo
// reason: "NOT_FOUND MODEL_NOT_FOUND: ...".
func describe(err error) string {
	st := status.Convert(err)
	reason := ""
	if gerr, ok := gateway.AsError(err); ok && gerr.Reason != "" {
		reason = " " + gerr.Reason
	}
	text := fmt.Sprintf("%s%s: %s", upperSnake(st.Code().String()), reason, st.Message())
	return text[:min(len(text), 300)]
}

func call(c config, client pb.ResponsesServiceClient, req *pb.CreateResponseRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	resp, err := client.CreateResponse(ctx, req)
	if err != nil {
		return fmt.Errorf("%s", describe(err))
	}
	if s := resp.GetStatus(); s != pb.ResponseStatus_RESPONSE_STATUS_COMPLETED {
		return fmt.Errorf("response %q has status %s", resp.GetId(), s)
	}
	return nil
}

// run makes calls (<= 0: no count) from every worker until the count or the budget runs out.
func run(c config, clients []pb.ResponsesServiceClient, requests int, budget time.Duration) (*phase, time.Duration) {
	p := &phase{counted: requests > 0, latencies: make([][]time.Duration, c.concurrency)}
	p.left.Store(int64(requests))
	req := request(c) // shared: the stubs only read it
	start := time.Now()
	if budget > 0 {
		p.deadline = start.Add(budget)
	}
	var wg sync.WaitGroup
	for i := range c.concurrency {
		client := clients[i%len(clients)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p.next() {
				t := time.Now()
				if err := call(c, client, req); err != nil {
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
		fmt.Fprintln(os.Stderr, "grpcload:", err)
		os.Exit(2)
	}
	runtime.GOMAXPROCS(c.procs)
	clients := make([]pb.ResponsesServiceClient, c.conns)
	for i := range clients {
		// Plaintext, no API key: the bench's gateway listens on loopback without auth. Each
		// NewClient is a channel of its own, so -conns opens that many connections.
		conn, err := grpc.NewClient(c.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Fprintln(os.Stderr, "grpcload:", err)
			os.Exit(2)
		}
		defer conn.Close()
		clients[i] = pb.NewResponsesServiceClient(conn)
	}
	if c.warmup > 0 {
		run(c, clients, c.warmup, c.budget/4)
	}
	// The caller's cue to read the other processes' CPU counters: the timed phase starts now.
	fmt.Fprintln(os.Stderr, "grpcload: timed phase starts")
	before := cpuSeconds()
	p, wall := run(c, clients, c.requests, c.budget)
	line, err := json.Marshal(summarize(p, wall, cpuSeconds()-before))
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpcload:", err)
		os.Exit(1)
	}
	fmt.Println(string(line))
}
