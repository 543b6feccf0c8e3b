package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// PKI validity defaults.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 2 * 365 * 24 * time.Hour
)

// CA is a cluster certificate authority: its certificate and key.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
}

// NewCA creates a self-signed cluster CA (ECDSA P-256) valid from now
// (less a minute of slack) for validFor (DefaultCAValidity when zero).
func NewCA(name string, now time.Time, validFor time.Duration) (*CA, error) {
	if validFor <= 0 {
		validFor = DefaultCAValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"geodnsd cluster"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// LoadCA reads a CA certificate and key from PEM files.
func LoadCA(certFile, keyFile string) (*CA, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	cblk, _ := pem.Decode(cb)
	if cblk == nil || cblk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", certFile)
	}
	cert, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate", certFile)
	}
	kblk, _ := pem.Decode(kb)
	if kblk == nil {
		return nil, fmt.Errorf("%s: no PEM key block", keyFile)
	}
	key, err := x509.ParseECPrivateKey(kblk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s: key does not match %s", keyFile, certFile)
	}
	return &CA{Cert: cert, Key: key, CertPEM: cb}, nil
}

// KeyPEM returns the CA key as a PEM "EC PRIVATE KEY" block.
func (ca *CA) KeyPEM() ([]byte, error) { return keyPEM(ca.Key) }

// Issue creates a node certificate (ECDSA P-256) for id, usable as TLS
// server and client: DNS SAN = id, IP SAN = ip when valid. It returns the
// certificate and key as PEM.
func (ca *CA) Issue(id string, ip netip.Addr, now time.Time, validFor time.Duration) (certPEM, keyPEMb []byte, err error) {
	if err := checkID(id); err != nil {
		return nil, nil, err
	}
	if validFor <= 0 {
		validFor = DefaultCertValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: id, Organization: []string{"geodnsd cluster"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{id},
	}
	if ip.IsValid() {
		tmpl.IPAddresses = []net.IP{ip.AsSlice()}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate for %s: %w", id, err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp, nil
}

// WritePKI writes into dir a cluster CA (ca.pem, ca-key.pem) — or reuses
// the one there — and, for each member, <id>.pem and <id>-key.pem naming
// the member's id and raft IP. Keys are written 0600, certificates 0644.
// It refuses to overwrite a node's existing certificate or key. It returns
// each member's TLSFiles.
func WritePKI(dir string, members []Member, now time.Time) (map[string]TLSFiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	caCert, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	var ca *CA
	_, errC := os.Stat(caCert)
	_, errK := os.Stat(caKey)
	switch {
	case errC == nil && errK == nil:
		var err error
		if ca, err = LoadCA(caCert, caKey); err != nil {
			return nil, err
		}
	case errors.Is(errC, fs.ErrNotExist) && errors.Is(errK, fs.ErrNotExist):
		var err error
		if ca, err = NewCA("geodnsd cluster CA", now, 0); err != nil {
			return nil, err
		}
		kp, err := ca.KeyPEM()
		if err != nil {
			return nil, err
		}
		if err := writeNew(caKey, kp, 0o600); err != nil {
			return nil, err
		}
		if err := writeNew(caCert, ca.CertPEM, 0o644); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s: need both ca.pem and ca-key.pem, or neither", dir)
	}
	out := map[string]TLSFiles{}
	for _, m := range members {
		cp, kp, err := ca.Issue(m.ID, m.Raft.Addr(), now, 0)
		if err != nil {
			return nil, err
		}
		f := TLSFiles{CA: caCert, Cert: filepath.Join(dir, m.ID+".pem"), Key: filepath.Join(dir, m.ID+"-key.pem")}
		if err := writeNew(f.Key, kp, 0o600); err != nil {
			return nil, err
		}
		if err := writeNew(f.Cert, cp, 0o644); err != nil {
			return nil, err
		}
		out[m.ID] = f
	}
	return out, nil
}

// writeNew creates path with mode, refusing to overwrite.
func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: already exists; not overwritten", path)
		}
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}
