package system_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/natsembed"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/platform/testenv/workspace"
	"github.com/rs/zerolog"
)

// pki is a certificate authority made for one test.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, name string) pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pki{cert: cert, key: key}
}

// issue writes a certificate signed by ca (for 127.0.0.1 when server,
// for client authentication otherwise) and its key as PEM files.
func (ca pki) issue(t *testing.T, certFile, keyFile string, server bool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: filepath.Base(certFile)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// shippedTLSBlock is the client TLS block that deploy/nats/nats.conf
// documents (commented out), uncommented, with its /etc/nats/tls/ paths
// moved to dir.
func shippedTLSBlock(t *testing.T, root, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "# tls {") || len(block) > 0 {
			block = append(block, strings.TrimPrefix(line, "# "))
			if line == "# }" {
				break
			}
		}
	}
	if len(block) == 0 || block[len(block)-1] != "}" {
		t.Fatalf("deploy/nats/nats.conf documents no client tls { } block")
	}
	return strings.ReplaceAll(strings.Join(block, "\n"), "/etc/nats/tls/", dir+"/") + "\n"
}

// TestRolesConnectOverMutualTLS: a NATS server with the client TLS block
// that deploy/nats/nats.conf documents (server certificate, CA, verify:
// true) and the shipped users. prism setup and a role process connect
// with NATS_TLS_CA, NATS_TLS_CERT and NATS_TLS_KEY; without the CA, with
// another CA, or without a client certificate the connection is refused
// with an error that names the variable to set.
func TestRolesConnectOverMutualTLS(t *testing.T) {
	root, err := workspace.Root()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := newCA(t, "prism test CA")
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.cert.Raw)
	ca.issue(t, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), true)
	ca.issue(t, filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"), false)
	other := newCA(t, "another CA")
	writePEM(t, filepath.Join(dir, "other-ca.pem"), "CERTIFICATE", other.cert.Raw)

	auth := system.NewBusAuth()
	for k, v := range auth.ServerEnv() {
		t.Setenv(k, v)
	}
	// auth.conf beside the configuration that includes it, as mounted.
	authConf, err := os.ReadFile(system.AuthConfPath(root))
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nats.conf")
	for file, data := range map[string]string{conf: shippedTLSBlock(t, root, dir) + "include auth.conf\n", filepath.Join(dir, "auth.conf"): string(authConf)} {
		if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ns, err := natsembed.Start(t.Context(), natsembed.Options{Dir: t.TempDir(), ConfigFile: conf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	if v, err := ns.NATSServer().Varz(nil); err != nil || !v.TLSRequired || !v.TLSVerify {
		t.Fatalf("the server does not require and verify client TLS (varz: %v): tls_required %v, tls_verify %v", err, v != nil && v.TLSRequired, v != nil && v.TLSVerify)
	}

	tlsEnv := func(user string, over map[string]string) map[string]string {
		env := map[string]string{
			"NATS_URL":    ns.ClientURL(),
			"NATS_TLS_CA": filepath.Join(dir, "ca.pem"), "NATS_TLS_CERT": filepath.Join(dir, "client.pem"), "NATS_TLS_KEY": filepath.Join(dir, "client-key.pem"),
			"LOG_FORMAT": "json",
		}
		for k, v := range auth.ClientEnv(user) {
			env[k] = v
		}
		for k, v := range over {
			if v == "" {
				delete(env, k)
			} else {
				env[k] = v
			}
		}
		return env
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := system.Setup(ctx, config.MapEnv(tlsEnv(system.AdminUser, nil)), zerolog.Nop()); err != nil {
		t.Fatalf("prism setup over TLS: %v", err)
	}

	// A role process, as deployed: its own user, the three TLS variables.
	p, err := system.StartProcess(testenv.PrismBinary(t), system.RoleNotifier, tlsEnv(system.RoleNotifier, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = p.Stop(10 * time.Second) })
	for !strings.Contains(p.Output(), "consumer started") {
		if done, err := p.Exited(); done {
			t.Fatalf("notifier over TLS exited: %v\n%s", err, p.Output())
		}
		if ctx.Err() != nil {
			t.Fatalf("notifier over TLS never bound its consumer:\n%s", p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, tc := range []struct {
		name string
		over map[string]string
		want []string // in the error, in order
	}{
		{"no NATS_TLS_CA", map[string]string{"NATS_TLS_CA": ""}, []string{"certificate signed by unknown authority", "set NATS_TLS_CA"}},
		{"another CA", map[string]string{"NATS_TLS_CA": filepath.Join(dir, "other-ca.pem")}, []string{"certificate signed by unknown authority", "NATS_TLS_CA=", "did not sign"}},
		{"no client certificate", map[string]string{"NATS_TLS_CERT": "", "NATS_TLS_KEY": ""}, []string{"tls", "set NATS_TLS_CERT and NATS_TLS_KEY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := system.Open(ctx, config.MapEnv(tlsEnv(system.RoleNotifier, tc.over)), system.Needs{NATS: true}, nil, zerolog.Nop(), system.RoleNotifier)
			if err == nil {
				in.Close()
				t.Fatal("connected")
			}
			msg, rest := err.Error(), err.Error()
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("refused with %q, want it to say %q", msg, tc.want)
				}
				rest = rest[i+len(w):]
			}
			t.Logf("refused: %s", msg)
		})
	}
}
