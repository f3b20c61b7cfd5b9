// Command echo is a webhook receiver for trying regwebhook out: it prints
// every request it gets — the regwebhook headers and the payload — and
// answers 200.
//
//	go run ./examples/echo            # listens on 127.0.0.1:8080
//	go run ./examples/echo -addr :9000
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"sort"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	log.Printf("echo: listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(echo)))
}

func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var out bytes.Buffer
	fmt.Fprintf(&out, "%s %s\n", r.Method, r.URL)
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&out, "  %s: %s\n", k, r.Header.Get(k))
	}
	if json.Indent(&out, body, "  ", "  ") != nil {
		out.Write(body)
	}
	fmt.Println(out.String())
}
