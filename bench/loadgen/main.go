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
	"net/http"
	"os"
	"runtime"
	"time"

	"responsesgateway/bench/loadgen/phase"
)

type config struct {
	phase.Common
	url  string
	body []byte
}

func parseFlags(args []string) (config, error) {
	var c config
	var body string
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&c.url, "url", "", "the URL to POST to (required)")
	fs.StringVar(&body, "body", "{}", "the JSON request body, sent as is")
	c.Register(fs, "requests")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.body = []byte(body)
	if c.url == "" {
		return c, fmt.Errorf("-url is required")
	}
	return c, c.Check()
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

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	runtime.GOMAXPROCS(c.Procs)
	clients := make([]*http.Client, c.Concurrency)
	for i := range clients {
		clients[i] = newClient(c.Timeout)
	}
	// The cue: the caller reads the other processes' CPU counters when the timed phase starts.
	cue := func() { fmt.Fprintln(os.Stderr, "loadgen: timed phase starts") }
	result := phase.Timed(c.Concurrency, c.Warmup, c.Requests, c.Budget, cue, func(i int) error {
		return post(clients[i], c.url, c.body)
	})
	line, err := json.Marshal(result)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	fmt.Println(string(line))
}
