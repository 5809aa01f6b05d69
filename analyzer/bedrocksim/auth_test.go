package bedrocksim_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"

	"github.com/aiprism/prism/analyzer/bedrocksim"
)

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestSigV4Verification(t *testing.T) {
	sim, ts := startSim(t, bedrocksim.Config{AccessKey: testKey, SecretKey: testSecret, Region: "us-east-1"})
	if _, err := converse(client(ts.URL, testKey, testSecret), haiku3, "hello", 0); err != nil {
		t.Fatalf("good signature rejected: %v", err)
	}
	if _, err := converse(client(ts.URL, testKey, "wrong-secret"), haiku3, "hello", 0); apiCode(err) != "InvalidSignatureException" {
		t.Fatalf("bad secret: err = %v, want InvalidSignatureException", err)
	}
	if _, err := converse(client(ts.URL, "AKIDOTHER", testSecret), haiku3, "hello", 0); apiCode(err) != "UnrecognizedClientException" {
		t.Fatalf("unknown key: err = %v, want UnrecognizedClientException", err)
	}

	// No Authorization header at all.
	resp, err := http.Post(ts.URL+"/model/"+haiku3+"/converse", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "MissingAuthenticationTokenException" {
		t.Fatalf("unsigned: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	if got := sim.Stats().Rejected; got["InvalidSignatureException"] != 1 || got["MissingAuthenticationTokenException"] != 1 {
		t.Errorf("rejected = %v", got)
	}
}

// TestSigV4SingleEscapedPath signs the way curl does: the path as sent,
// not escaped a second time, and with a tampered body for contrast.
func TestSigV4SingleEscapedPath(t *testing.T) {
	_, ts := startSim(t, bedrocksim.Config{AccessKey: testKey, SecretKey: testSecret})
	body := []byte(`{"messages":[{"role":"user","content":[{"text":"hello"}]}]}`)
	send := func(sent []byte) int {
		req, _ := http.NewRequest("POST", ts.URL+"/model/"+strings.ReplaceAll(sonnet45, ":", "%3A")+"/converse", bytes.NewReader(sent))
		req.Header.Set("Content-Type", "application/json")
		sum := sha256.Sum256(body)
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret},
			req, hex.EncodeToString(sum[:]), "bedrock", "us-east-1", time.Now(), func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(body); got != 200 {
		t.Fatalf("single-escaped signature: status %d", got)
	}
	if got := send(bytes.Replace(body, []byte("hello"), []byte("HELLO"), 1)); got != 403 {
		t.Fatalf("tampered body: status %d, want 403", got)
	}
}
