package system_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiprism/prism/platform/testenv"
)

// TestDevWithTokenAuth: prism dev with API_AUTH=token makes a local
// account whose password is in a private file, the banner's command signs
// in with it, and the API then takes the session and nothing less. A
// restart keeps the account and its password.
func TestDevWithTokenAuth(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("this test runs the banner's sign-in command, which needs curl on PATH")
	}
	varDir, dsn := t.TempDir(), testenv.Postgres(t)
	env := map[string]string{"API_AUTH": "token", "PRISM_DEV_ROLES": "persist,ingest,api"}
	dev := startDev(t, varDir, dsn, env)
	a := dev.Account
	if a.Email != "dev@localhost" || a.PasswordFile != filepath.Join(varDir, "dev-password") {
		t.Fatalf("dev account %+v", a)
	}
	fi, err := os.Stat(a.PasswordFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v, mode %v; want 0600", err, fi.Mode())
	}
	password := readPassword(t, a.PasswordFile)

	if code := postUpload(t, dev.APIURL, nil); code != http.StatusUnauthorized {
		t.Fatalf("upload without signing in: %d, want 401", code)
	}

	// The banner's command, as printed.
	dir := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", a.SignInCommand(dev.APIURL))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"csrf_token"`) || strings.Contains(string(out), password) {
		t.Fatalf("the banner's sign-in command: %v\n%s", err, out)
	}
	if jar, err := os.ReadFile(filepath.Join(dir, "cookies.txt")); err != nil || !strings.Contains(string(jar), "prism_session") {
		t.Fatalf("no session cookie kept: %v\n%s", err, jar)
	}

	cookie, csrf := signIn(t, dev.APIURL, a.Email, password)
	if code := postUpload(t, dev.APIURL, map[string]string{"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": dev.APIURL}); code != http.StatusAccepted {
		t.Fatalf("upload signed in: %d, want 202", code)
	}

	dev.stop()
	again := startDev(t, varDir, dsn, env)
	if got := readPassword(t, again.Account.PasswordFile); got != password {
		t.Fatal("a restart changed the dev account's password")
	}
	signIn(t, again.APIURL, a.Email, password)
}

func readPassword(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

// signIn signs in and returns the session cookie (name=value) and the
// CSRF token.
func signIn(t *testing.T, api, email, password string) (string, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := http.Post(api+"/api/v1/session", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		CSRF string `json:"csrf_token"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil || len(resp.Cookies()) != 1 {
		t.Fatalf("sign in: %d %s", resp.StatusCode, raw)
	}
	return resp.Cookies()[0].Name + "=" + resp.Cookies()[0].Value, out.CSRF
}

// postUpload uploads a small document with the header fields given and
// returns the status.
func postUpload(t *testing.T, api string, header map[string]string) int {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "note.txt")
	_, _ = fw.Write([]byte("a note"))
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, api+"/api/v1/documents", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
