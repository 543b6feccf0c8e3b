package health

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/config"
)

// configHead is a valid configuration up to one site "s" whose only endpoint
// answers 192.0.2.1 and is probed on loopback.
const configHead = `
[node]
id = "t"
[dns]
listen = ["127.0.0.1:53"]
[sites.s]
endpoints = [{ name = "e", address = "192.0.2.1", probe = "127.0.0.1" }]
`

// parseCheck reads one check written in TOML (the body of [[sites.s.checks]])
// through config, so that tests use the real schema and defaults.
func parseCheck(t *testing.T, body string) *config.Check {
	t.Helper()
	cfg, err := config.Parse([]byte(configHead+"[[sites.s.checks]]\nname = \"c\"\n"+body), "")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg.Sites["s"].Checks[0]
}

// parseSync reads a sync check (the body of [sites.s.sync]).
func parseSync(t *testing.T, body string) *config.Check {
	t.Helper()
	cfg, err := config.Parse([]byte(configHead+"[sites.s.sync]\n"+body), "")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg.Sites["s"].Sync
}

// runProbe compiles c and probes addr (a loopback host:port) once.
func runProbe(t *testing.T, c *config.Check, sync bool, addr string) Result {
	t.Helper()
	p, err := NewProbe(c, sync)
	if err != nil {
		t.Fatalf("NewProbe: %v", err)
	}
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	ctx, cancel := context.WithTimeout(t.Context(), c.Timeout.Duration)
	defer cancel()
	return p(ctx, Target{Site: "s", Endpoint: "e", Address: "192.0.2.1", Host: host, Port: n})
}

// wantResult checks a result: errSub "" wants success, else an error
// containing errSub.
func wantResult(t *testing.T, r Result, errSub string) {
	t.Helper()
	switch {
	case errSub == "" && r.Err != nil:
		t.Errorf("probe failed: %v", r.Err)
	case errSub != "" && r.Err == nil:
		t.Errorf("probe succeeded (%s), want an error containing %q", r.Reason(), errSub)
	case errSub != "" && !strings.Contains(r.Err.Error(), errSub):
		t.Errorf("error %q\ndoes not contain %q", r.Err, errSub)
	}
}

// pki is a test CA and the certificates it issues.
type pki struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string // PEM of the CA, for ca_file
	dir    string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "geodnsd test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour * 365),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	p := &pki{ca: ca, caKey: key, dir: dir, caFile: filepath.Join(dir, "ca.pem")}
	writePEM(t, p.caFile, "CERTIFICATE", der)
	return p
}

// leaf issues a certificate for names (host names or IP addresses), valid
// from notBefore to notAfter; client certificates get client auth usage.
func (p *pki) leaf(t *testing.T, notBefore, notAfter time.Time, client bool, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// valid issues a currently valid server certificate.
func (p *pki) valid(t *testing.T, names ...string) tls.Certificate {
	return p.leaf(t, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour), false, names...)
}

// files writes a certificate and its key as PEM files (for cert_file, key_file).
func (p *pki) files(t *testing.T, c tls.Certificate, name string) (certFile, keyFile string) {
	t.Helper()
	certFile = filepath.Join(p.dir, name+".pem")
	keyFile = filepath.Join(p.dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", c.Certificate[0])
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", der)
	return certFile, keyFile
}

func (p *pki) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return pool
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// listen opens a loopback TCP listener closed at the end of the test.
func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// serve accepts connections on l and runs handle on each in its own
// goroutine until l is closed.
func serve(l net.Listener, handle func(net.Conn)) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}
