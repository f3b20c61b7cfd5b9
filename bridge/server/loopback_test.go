package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/regwebhook/regwebhook/config"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// With no admin.token, the API on the server's listener holds against the
// two ways a web page in the user's browser reaches a service on loopback
// (SPEC §5): a name of its own that it rebinds to 127.0.0.1 (its Host is
// not a loopback name: 403), and a cross-site form, which can POST only
// form, multipart or text bodies (not application/json: 415). Nothing such
// a request asks for happens.
func TestNoTokenLoopbackMode(t *testing.T) {
	target := hooktest.New(t)
	srv := start(t, config.Default())
	base := "http://" + srv.Addr()
	local := srv.Addr() // 127.0.0.1:port
	port := local[strings.LastIndex(local, ":")+1:]
	hook := "/api/v1/webhooks/loophook1"

	if status, body := apiCall(t, base, "POST", "/api/v1/webhooks", local, "application/json",
		`{"name":"loophook1","uri":"`+target.URL()+`/hook","headers":{"Authorization":"Bearer s3cret"}}`); status != http.StatusCreated {
		t.Fatalf("create from a loopback client, as 127.0.0.1: %d %s", status, body)
	}
	form, formType := multipartForm(t, map[string]string{"name": "formhook1", "uri": target.URL()})

	tests := []struct {
		name, method, path, host, contentType, body string
		status                                      int
		code                                        string
	}{
		// DNS rebinding: the page's own name, resolving to 127.0.0.1.
		{"list, another name", "GET", "/api/v1/webhooks", "evil.example.com", "", "", 403, "forbidden"},
		{"list, another name with the port", "GET", "/api/v1/webhooks", "evil.example.com:" + port, "", "", 403, "forbidden"},
		{"list, a name that ends like an address", "GET", "/api/v1/webhooks", "127.0.0.1.evil.example.com:" + port, "", "", 403, "forbidden"},
		{"list, a name that starts like localhost", "GET", "/api/v1/webhooks", "localhost.evil.example.com", "", "", 403, "forbidden"},
		{"get-config, another name", "GET", hook + "/config", "evil.example.com:" + port, "", "", 403, "forbidden"},
		{"create, another name", "POST", "/api/v1/webhooks", "evil.example.com:" + port, "application/json",
			`{"name":"evilhook1","uri":"http://evil.example.com/"}`, 403, "forbidden"},
		{"update, another name", "PATCH", hook, "evil.example.com:" + port, "application/json", `{"status":"disabled"}`, 403, "forbidden"},
		{"delete, another name", "DELETE", hook, "evil.example.com:" + port, "application/json", "", 403, "forbidden"},
		{"ping, another name", "POST", hook + "/ping", "evil.example.com:" + port, "application/json", "", 403, "forbidden"},
		// Cross-site forms, to the right name.
		{"create as a urlencoded form", "POST", "/api/v1/webhooks", local, "application/x-www-form-urlencoded",
			"name=formhook1&uri=" + target.URL(), 415, "unsupported_media_type"},
		{"create as a multipart form", "POST", "/api/v1/webhooks", local, formType, form, 415, "unsupported_media_type"},
		{"create as text/plain holding JSON", "POST", "/api/v1/webhooks", local, "text/plain",
			`{"name":"formhook1","uri":"` + target.URL() + `"}`, 415, "unsupported_media_type"},
		{"update as text/plain holding JSON", "PATCH", hook, "localhost:" + port, "text/plain", `{"status":"disabled"}`, 415, "unsupported_media_type"},
		{"update as a form", "PATCH", hook, local, "application/x-www-form-urlencoded", "status=disabled", 415, "unsupported_media_type"},
		{"delete as a form", "DELETE", hook, local, "application/x-www-form-urlencoded", "", 415, "unsupported_media_type"},
		{"delete without a content type", "DELETE", hook, local, "", "", 415, "unsupported_media_type"},
		{"ping as a form", "POST", hook + "/ping", local, "application/x-www-form-urlencoded", "", 415, "unsupported_media_type"},
		{"ping as text/plain", "POST", hook + "/ping", local, "text/plain", "", 415, "unsupported_media_type"},
		{"redeliver as a form", "POST", hook + "/deadletters/redeliver", local, "multipart/form-data; boundary=x", "--x--", 415, "unsupported_media_type"},
		{"purge as a form", "DELETE", hook + "/deadletters", local, "application/x-www-form-urlencoded", "", 415, "unsupported_media_type"},
		// A type that only looks like JSON.
		{"create as application/json-seq", "POST", "/api/v1/webhooks", local, "application/json-seq",
			`{"name":"formhook1","uri":"` + target.URL() + `"}`, 415, "unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := apiCall(t, base, tt.method, tt.path, tt.host, tt.contentType, tt.body)
			var e struct {
				Error struct{ Code, Message string }
			}
			if status != tt.status || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != tt.code {
				t.Errorf("answered %d %s, want %d with code %q", status, body, tt.status, tt.code)
			}
			if strings.Contains(body, "s3cret") {
				t.Errorf("a refusal shows the header value: %s", body)
			}
		})
	}

	// Nothing happened: one webhook, unchanged, never pinged.
	status, body := apiCall(t, base, "GET", "/api/v1/webhooks", "localhost:"+port, "", "")
	var list struct {
		Items []struct{ Name, Status string }
	}
	if err := json.Unmarshal([]byte(body), &list); status != http.StatusOK || err != nil {
		t.Fatalf("list: %d %s", status, body)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "loophook1" || list.Items[0].Status != "enabled" {
		t.Errorf("after the refused calls the webhooks are %+v, want loophook1 alone, enabled", list.Items)
	}
	if n := target.Count(); n != 0 {
		t.Errorf("the webhook's target got %d requests, want none", n)
	}
	// The same calls as JSON to a loopback name are taken.
	if status, body := apiCall(t, base, "POST", hook+"/ping", "[::1]:"+port, "application/json", ""); status != http.StatusOK {
		t.Errorf("ping as JSON, as [::1]: %d %s", status, body)
	}
	if status, body := apiCall(t, base, "DELETE", hook, "LOCALHOST", "application/json", ""); status != http.StatusNoContent {
		t.Errorf("delete as JSON, as LOCALHOST: %d %s", status, body)
	}
}

// apiCall makes a request to the server with the given Host and
// Content-Type (left out when empty) and returns its status and body.
func apiCall(t *testing.T, base, method, path, host, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}

// multipartForm encodes fields as a browser's multipart form does, and
// returns the body and its content type.
func multipartForm(t *testing.T, fields map[string]string) (string, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String(), w.FormDataContentType()
}
