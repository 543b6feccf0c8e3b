package cluster

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// readRefused dials addr with conf, writes the forwarding byte and a
// request, and reports the error that the server's refusal produces (nil
// if the server answered).
func readRefused(t *testing.T, addr string, conf *tls.Config) error {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(&d, "tcp", addr, conf)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("FPOST /v1/write HTTP/1.1\r\nHost: ns1\r\nContent-Length: 2\r\n\r\n{}")); err != nil {
		return err
	}
	var b [64]byte
	_, err = c.Read(b[:])
	return err
}

func clientConf(t *testing.T, f TLSFiles, serverName string) *tls.Config {
	t.Helper()
	_, cl, err := tlsConfigs(f, serverNameOr(f, serverName), &roster{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl = cl.Clone()
	cl.ServerName = serverName
	return cl
}

// serverNameOr is the id the files were issued for (tlsConfigs checks it).
func serverNameOr(f TLSFiles, _ string) string {
	base := f.Cert[strings.LastIndex(f.Cert, "/")+1:]
	return strings.TrimSuffix(base, ".pem")
}

// A peer is accepted only with a certificate from the cluster CA that
// names a listed member; nothing is spoken in plain text; a dialer refuses
// a server whose certificate names another member than the one it meant
// to reach, or comes from another CA.
func TestTLSRefusesStrangers(t *testing.T) {
	t.Parallel()
	tc := startCluster(t, 2, nil)
	leader(t, tc.nodes)
	addr := tc.members[0].Raft.String()

	// Sanity: a member's own certificate is accepted (the forwarding server
	// answers, even if with an error for this request).
	if err := readRefused(t, addr, clientConf(t, tc.tls["ns2"], "ns1")); err != nil {
		t.Fatalf("a member's certificate was refused: %v", err)
	}

	// Another CA, same node names.
	otherCA, err := WritePKI(t.TempDir(), tc.members, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreign := clientConf(t, otherCA["ns2"], "ns1")
	foreign.RootCAs = clientConf(t, tc.tls["ns2"], "ns1").RootCAs // trust the server, present the foreign cert
	if err := readRefused(t, addr, foreign); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}

	// The right CA, a name that is no member's.
	ca, err := LoadCA(tc.tls["ns1"].CA, strings.TrimSuffix(tc.tls["ns1"].CA, ".pem")+"-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("ns9", netip.MustParseAddr("127.0.0.1"), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	stranger := clientConf(t, tc.tls["ns2"], "ns1")
	stranger.Certificates = []tls.Certificate{kp}
	if err := readRefused(t, addr, stranger); err == nil {
		t.Fatal("a certificate naming no member was accepted")
	}

	// No client certificate at all.
	anon := clientConf(t, tc.tls["ns2"], "ns1")
	anon.Certificates = nil
	if err := readRefused(t, addr, anon); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}

	// Plain text: the server speaks only TLS.
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	raw.Write([]byte("RPOST /v1/write HTTP/1.1\r\nHost: ns1\r\n\r\n"))
	var b [256]byte
	n, _ := raw.Read(b[:])
	raw.Close()
	if strings.Contains(string(b[:n]), "HTTP/1.1 200") {
		t.Fatal("the port answered plain text")
	}

	// The dialer's side: ns1 means to reach ns2 but finds a server with
	// ns2's address presenting ns3's... here ns1's own certificate (another
	// member), or a certificate from another CA.
	for name, files := range map[string]TLSFiles{"another member's certificate": tc.tls["ns1"], "another CA": otherCA["ns2"]} {
		t.Run(name, func(t *testing.T) {
			srvConf, _, err := tlsConfigs(files, serverNameOr(files, ""), &roster{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			srvConf = srvConf.Clone()
			srvConf.ClientAuth, srvConf.VerifyConnection = tls.RequireAnyClientCert, nil
			ln, err := tls.Listen("tcp", "127.0.0.1:0", srvConf)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.(*tls.Conn).Handshake()
					c.Close()
				}
			}()
			ros := &roster{}
			ros.set([]Member{tc.members[0], {ID: "ns2", Raft: netip.MustParseAddrPort(ln.Addr().String()), Voter: true}})
			m := newMux(ln, ros, t.Logf)
			m.server, m.client, err = tlsConfigs(tc.tls["ns1"], "ns1", ros, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := m.dial(ctx, "ns2", protoRaft)
			if err == nil {
				c.Close()
				t.Fatal("dialer accepted an impostor")
			}
			if !strings.Contains(err.Error(), "certificate") {
				t.Errorf("error does not say why: %v", err)
			}
		})
	}
}

// Shutdown does not wait out handshakeTimeout for a peer that completed
// TLS but sent no protocol byte, nor for one that never began the
// handshake: it closes them.
func TestShutdownClosesPendingHandshakes(t *testing.T) {
	t.Parallel()
	tc := startCluster(t, 2, nil)
	leader(t, tc.nodes)
	addr := tc.members[0].Raft.String()
	d := net.Dialer{Timeout: 5 * time.Second}
	mute, err := tls.DialWithDialer(&d, "tcp", addr, clientConf(t, tc.tls["ns2"], "ns1"))
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	silent, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// The bound only fails the test: a shutdown that waited for these
	// connections would take handshakeTimeout.
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout/2)
	defer cancel()
	if err := tc.nodes[0].Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a handshake pending: %v", err)
	}
	tc.nodes[0] = nil
}

// tlsConfigs refuses a certificate that does not name the node, or that
// another CA issued.
func TestTLSConfigChecksOwnCertificate(t *testing.T) {
	ms := []Member{{ID: "ns1", Raft: netip.MustParseAddrPort("127.0.0.1:7001"), Voter: true}, {ID: "ns2", Raft: netip.MustParseAddrPort("127.0.0.1:7002"), Voter: true}}
	files, err := WritePKI(t.TempDir(), ms, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ros := &roster{}
	ros.set(ms)
	if _, _, err := tlsConfigs(files["ns2"], "ns1", ros, nil); err == nil || !strings.Contains(err.Error(), `not valid for node "ns1"`) {
		t.Errorf("ns2's certificate for ns1: %v", err)
	}
	other, err := WritePKI(t.TempDir(), ms, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mixed := files["ns1"]
	mixed.CA = other["ns1"].CA
	if _, _, err := tlsConfigs(mixed, "ns1", ros, nil); err == nil {
		t.Error("a certificate from another CA accepted as our own")
	}
	for _, f := range []string{files["ns1"].Key, files["ns2"].Key, strings.TrimSuffix(files["ns1"].CA, ".pem") + "-key.pem"} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, st.Mode().Perm(), err)
		}
	}
	// WritePKI refuses to overwrite, and reuses the CA for a new member.
	dir := t.TempDir()
	if _, err := WritePKI(dir, ms[:1], time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := WritePKI(dir, ms[:1], time.Now()); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("overwrite: %v", err)
	}
	f2, err := WritePKI(dir, ms[1:], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tlsConfigs(f2["ns2"], "ns2", ros, nil); err != nil {
		t.Errorf("a certificate added later under the same CA: %v", err)
	}
}
