// Command fastupstream is bench/fast_upstream.py's unary half in Go: a fake of OpenAI's
// POST /v1/responses that answers every non-streaming request with the response recorded in
// tests/transcripts/openai/text.json, with fresh resp_/msg_ ids (the gateway stores responses by id).
// The scaling line uses it because on a 2-core machine every microsecond the upstream spends is taken
// from the gateway; streaming requests get a 501 (the Python one serves those).
//
// Run: fastupstream -transcript tests/transcripts/openai/text.json -port 0 (prints "listening on HOST:PORT").
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
)

const idHex = 48 // the transcript's ids are resp_ / msg_ + 48 hex digits, as OpenAI's are

// reply is the recorded response as compact JSON, and where its ids' hex digits start.
type reply struct {
	head []byte // status line and headers, content-length included
	body []byte
	ids  []int
}

func load(path string) (*reply, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t struct {
		Response json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	var shape struct {
		ID     string `json:"id"`
		Output []struct {
			ID string `json:"id"`
		} `json:"output"`
	}
	if err := json.Unmarshal(t.Response, &shape); err != nil {
		return nil, err
	}
	var body bytes.Buffer
	if err := json.Compact(&body, t.Response); err != nil { // field order kept, as recorded
		return nil, err
	}
	ids := []string{shape.ID}
	if len(shape.Output) > 0 {
		ids = append(ids, shape.Output[0].ID)
	}
	r := &reply{body: body.Bytes()}
	r.head = []byte("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nopenai-processing-ms: 1\r\n" +
		"content-length: " + strconv.Itoa(body.Len()) + "\r\n\r\n")
	for _, id := range ids {
		prefix := len(id) - idHex // "resp_" or "msg_"
		marker := []byte(`"` + id + `"`)
		found := len(r.ids)
		for from := 0; prefix >= 0; { // every occurrence: an id may be repeated
			i := bytes.Index(r.body[from:], marker)
			if i < 0 {
				break
			}
			r.ids = append(r.ids, from+i+1+prefix)
			from += i + len(marker)
		}
		if len(r.ids) == found {
			return nil, fmt.Errorf("id %q: not found, or shorter than %d hex digits", id, idHex)
		}
	}
	return r, nil
}

// fresh is a copy of the reply's body with new random ids (unique is what matters, not secret).
func (r *reply) fresh() []byte {
	out := bytes.Clone(r.body)
	var raw [idHex / 2]byte
	for _, at := range r.ids {
		for i := 0; i < len(raw); i += 8 {
			v := rand.Uint64()
			for j := range 8 {
				raw[i+j] = byte(v >> (8 * j))
			}
		}
		hex.Encode(out[at:at+idHex], raw[:])
	}
	return out
}

// errorReply is a whole HTTP/1.1 response carrying an OpenAI-shaped error.
func errorReply(status string, message string) []byte {
	body, _ := json.Marshal(map[string]any{
		"error": map[string]any{"message": message, "type": "invalid_request_error", "param": nil},
	})
	head := "HTTP/1.1 " + status + "\r\ncontent-type: application/json\r\ncontent-length: "
	return append([]byte(head+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
}

// answer is the whole HTTP/1.1 response to one request.
func (r *reply) answer(method, path string, body []byte) []byte {
	if method != "POST" || (path != "/v1/responses" && path != "/responses") {
		return errorReply("404 Not Found", fmt.Sprintf("Invalid URL (%s %s)", method, path))
	}
	var request struct {
		Stream bool `json:"stream"`
	}
	if err := json.Unmarshal(body, &request); err != nil {
		return errorReply("400 Bad Request", "We could not parse the JSON body of your request.")
	}
	if request.Stream {
		return errorReply("501 Not Implemented", "streaming is served by bench/fast_upstream.py only")
	}
	return append(bytes.Clone(r.head), r.fresh()...)
}

// serve answers one keep-alive connection's requests in order. HTTP by hand, not net/http: its
// per-connection reader goroutine costs more wake-ups per request than the whole Python upstream.
// Bodies must come with Content-Length (the gateway's client always sends one).
func (r *reply) serve(conn net.Conn) {
	defer conn.Close()
	in := bufio.NewReader(conn)
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			return // the client closed the connection
		}
		method, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		target, _, _ := strings.Cut(rest, " ")
		path, _, _ := strings.Cut(target, "?")
		length, closing := 0, false
		for {
			header, err := in.ReadString('\n')
			if err != nil {
				return
			}
			name, value, _ := strings.Cut(strings.TrimSpace(header), ":")
			value = strings.TrimSpace(value)
			switch strings.ToLower(name) {
			case "":
				goto body
			case "content-length":
				length, _ = strconv.Atoi(value)
			case "transfer-encoding":
				conn.Write(errorReply("411 Length Required", "send a Content-Length"))
				return
			case "connection":
				closing = strings.EqualFold(value, "close")
			}
		}
	body:
		payload := make([]byte, length)
		if _, err := io.ReadFull(in, payload); err != nil {
			return
		}
		if _, err := conn.Write(r.answer(method, path, payload)); err != nil || closing {
			return
		}
	}
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 0, "port (0: any free one)")
	transcript := flag.String("transcript", "tests/transcripts/openai/text.json", "the recorded reply")
	procs := flag.Int("procs", 1, "GOMAXPROCS: one keeps each request on one thread, the cheapest for a few thousand rps")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	r, err := load(*transcript)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fastupstream:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fastupstream:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fastupstream:", err)
			os.Exit(1)
		}
		go r.serve(conn)
	}
}
