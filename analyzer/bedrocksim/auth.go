package bedrocksim

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Authentication errors, as AWS's front door returns them:
//
//   - no Authorization header: 403 MissingAuthenticationTokenException
//   - a header that is not a SigV4 (or Bearer) header: 400 IncompleteSignatureException
//   - an access key other than the configured one: 403 UnrecognizedClientException
//   - a signature that does not verify (wrong secret, altered body, wrong
//     region or service in the scope): 403 InvalidSignatureException
//
// Bearer tokens (Bedrock API keys) pass only when no keys are configured.
// The request time is not checked against the clock.
const (
	msgMissingAuth   = "Missing Authentication Token"
	msgIncompleteSig = "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters, and the X-Amz-Date header."
	msgUnrecognized  = "The security token included in the request is invalid."
	msgBadSignature  = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

const sigV4Algorithm = "AWS4-HMAC-SHA256"

type sigV4Header struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

func parseSigV4(h string) (sigV4Header, bool) {
	var out sigV4Header
	rest, ok := strings.CutPrefix(h, sigV4Algorithm+" ")
	if !ok {
		return out, false
	}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			scope := strings.Split(v, "/")
			if len(scope) != 5 || scope[4] != "aws4_request" {
				return out, false
			}
			out.accessKey, out.date, out.region, out.service = scope[0], scope[1], scope[2], scope[3]
		case "SignedHeaders":
			out.signedHeaders = strings.Split(v, ";")
		case "Signature":
			out.signature = v
		}
	}
	return out, out.accessKey != "" && len(out.signedHeaders) > 0 && out.signature != ""
}

// authenticate checks the request's credentials; see the list above.
func (s *Server) authenticate(r *http.Request, body []byte) *apiError {
	h := r.Header.Get("Authorization")
	if h == "" {
		return errAuth(403, "MissingAuthenticationTokenException", msgMissingAuth)
	}
	verify := s.cfg.AccessKey != "" && s.cfg.SecretKey != ""
	if strings.HasPrefix(h, "Bearer ") {
		if verify {
			return errAuth(403, "UnrecognizedClientException", msgUnrecognized)
		}
		return nil
	}
	sig, ok := parseSigV4(h)
	if !ok || r.Header.Get("X-Amz-Date") == "" {
		return errAuth(400, "IncompleteSignatureException", msgIncompleteSig)
	}
	if !verify {
		return nil
	}
	if sig.accessKey != s.cfg.AccessKey {
		return errAuth(403, "UnrecognizedClientException", msgUnrecognized)
	}
	if (s.cfg.Region != "" && sig.region != s.cfg.Region) || sig.service != "bedrock" {
		return errAuth(403, "InvalidSignatureException", msgBadSignature)
	}
	signTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return errAuth(400, "IncompleteSignatureException", msgIncompleteSig)
	}
	// The SDK escapes the already-escaped path once more for the canonical
	// request (%3A -> %253A); curl signs the path as sent. Accept either.
	for _, single := range []bool{false, true} {
		want, err := s.resign(r, body, sig, signTime, single)
		if err == nil && hmac.Equal([]byte(want), []byte(sig.signature)) {
			return nil
		}
	}
	return errAuth(403, "InvalidSignatureException", msgBadSignature)
}

// resign signs a copy of r made of exactly the headers the client signed,
// with the configured secret, and returns the signature it gets.
func (s *Server) resign(r *http.Request, body []byte, sig sigV4Header, t time.Time, singleEscape bool) (string, error) {
	rawPath, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		return "", err
	}
	req := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Scheme: "http", Host: r.Host, Path: path, RawPath: rawPath, RawQuery: rawQuery},
		Host:   r.Host,
		Header: http.Header{},
	}
	token := ""
	for _, name := range sig.signedHeaders {
		switch name {
		case "host":
		case "content-length":
			req.ContentLength = int64(len(body))
		default:
			key := textproto.CanonicalMIMEHeaderKey(name)
			req.Header[key] = slices.Clone(r.Header.Values(key))
			if key == "X-Amz-Security-Token" {
				token = r.Header.Get(key)
			}
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: s.cfg.AccessKey, SecretAccessKey: s.cfg.SecretKey, SessionToken: token}
	err = s.signer.SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), sig.service, sig.region, t,
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = singleEscape })
	if err != nil {
		return "", err
	}
	_, got, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	return got, nil
}
