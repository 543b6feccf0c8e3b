package config

import (
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
	"testing"
	"time"
)

// testCA is a throw-away cluster CA for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test cluster CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// writeCA writes the CA certificate as PEM to file.
func (ca *testCA) writeCA(t *testing.T, file string) {
	t.Helper()
	writePEM(t, file, "CERTIFICATE", ca.cert.Raw)
}

// writeNode writes a node certificate naming dnsName (and 127.0.0.1) and its
// key to cert and key.
func (ca *testCA) writeNode(t *testing.T, dnsName, cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: dnsName},
		DNSNames:     []string{dnsName},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, cert, "CERTIFICATE", der)
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, key, "EC PRIVATE KEY", kd)
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// clusterDir makes a directory with certs/ca.pem and certs/nsN.pem,
// certs/nsN-key.pem for ns1..ns6, and returns it.
func clusterDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ca := newTestCA(t)
	ca.writeCA(t, filepath.Join(dir, "certs", "ca.pem"))
	for _, id := range []string{"ns1", "ns2", "ns3", "ns4", "ns5", "ns6"} {
		ca.writeNode(t, id, filepath.Join(dir, "certs", id+".pem"), filepath.Join(dir, "certs", id+"-key.pem"))
	}
	// A certificate of another CA, and one that names another node.
	other := newTestCA(t)
	other.writeNode(t, "ns1", filepath.Join(dir, "certs", "foreign.pem"), filepath.Join(dir, "certs", "foreign-key.pem"))
	ca.writeNode(t, "ns9", filepath.Join(dir, "certs", "ns9.pem"), filepath.Join(dir, "certs", "ns9-key.pem"))
	// The zones directories the files name (Load checks that they exist).
	for _, z := range []string{"zones", "elsewhere"} {
		if err := os.MkdirAll(filepath.Join(dir, z), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// copyInto copies testdata files into dir and returns the path of the last.
func copyInto(t *testing.T, dir string, files ...string) string {
	t.Helper()
	var out string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
