package dnsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// TestDontFragment runs a server in a network namespace of its own whose
// loopback has an MTU of 1280, with udp_size 4096, over both UDP paths
// (batched and one by one), IPv4 and IPv6. Replies are fitted to what the
// interface sends whole (RFC 9715 §3.1): an MX answer whose additional
// records do not fit keeps its answer without TC, signed too; an RRset
// bigger than the link comes back TC with OPT. Every reply leaves with DF
// and IPv4 ID 0, none in fragments. Then the MTU drops below what the
// server read at start: a reply that no longer fits is sent TC (EMSGSIZE).
// Needs root (CAP_SYS_ADMIN) for the namespace.
func TestDontFragment(t *testing.T) {
	// The namespace belongs to this goroutine's thread; the thread is
	// never unlocked, so it ends with the test instead of serving others.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skipf("no network namespace of our own (needs root): %v", err)
	}
	setLoopback(t, 1280, true)
	capture := capturePackets(t)
	const keyName, secret = "fit.key.", "c2VjcmV0LWtleS1mb3ItZ2VvZG5zZC10ZXN0cw=="
	listen := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParseAddrPort("[::1]:0")}
	var servers []*Server
	for _, simple := range []bool{false, true} {
		s := startServer(t, Options{Listen: listen, UDPSize: 4096, Source: newSource(t, testZone+wideMX),
			TSIGKeys: []TSIGKey{{Name: keyName, Algorithm: dns.HmacSHA256, Secret: secret}}}, simple)
		servers = append(servers, s)
		for i, addr := range s.UDPAddrs() {
			room := []int{1280 - 28, 1280 - 48}[i]
			huge := q{id: 91, name: "huge.example.com.", qtype: dns.TypeTXT, edns: true, size: 4096}.bytes(t)
			check(t, exchangeRaw(t, "udp", addr, huge), 91,
				want{flags: "qr aa tc", question: "huge.example.com. IN TXT", opt: &wantOPT{size: 4096}})
			mx := q{id: 92, name: "wide.example.com.", qtype: dns.TypeMX, edns: true, size: 4096}.bytes(t)
			out := exchangeRaw(t, "udp", addr, mx)
			if m := mustUnpack(t, out); len(out) > room || m.Truncated || len(m.Answer) != 30 || len(m.Extra) < 2 {
				t.Errorf("simple=%v %v: MX reply %d bytes (room %d), TC %v, %d answers, %d additional; want the 30 MX and some addresses, no TC",
					simple, addr, len(out), room, m.Truncated, len(m.Answer), len(m.Extra))
			}
			signed := withMsg(t, q{id: 93, name: "wide.example.com.", qtype: dns.TypeMX, edns: true, size: 4096}, func(m *dns.Msg) {
				m.SetTsig(keyName, dns.HmacSHA256, 300, time.Now().Unix())
			})
			signed, mac, err := dns.TsigGenerate(mustUnpack(t, signed), secret, "", false)
			if err != nil {
				t.Fatal(err)
			}
			out = exchangeRaw(t, "udp", addr, signed)
			if err := dns.TsigVerify(out, secret, mac, false); err != nil || len(out) > room || len(mustUnpack(t, out).Answer) != 30 {
				t.Errorf("simple=%v %v: signed MX reply %d bytes (room %d), verify %v", simple, addr, len(out), room, err)
			}
			port := uint16(addr.(*net.UDPAddr).Port)
			if n := capture(port); n == 0 {
				t.Errorf("simple=%v %v: no reply seen on the loopback", simple, addr)
			}
		}
	}
	// The link shrinks below what the servers read at start (IPv6 goes
	// with it: it needs 1280): a reply that fitted then is sent TC.
	setLoopback(t, 576, false)
	for _, s := range servers {
		addr := s.UDPAddrs()[0]
		big := q{id: 94, name: "big.example.com.", qtype: dns.TypeTXT, edns: true, size: 4096}.bytes(t)
		check(t, exchangeRaw(t, "udp", addr, big), 94,
			want{flags: "qr aa tc", question: "big.example.com. IN TXT", opt: &wantOPT{size: 4096}})
		capture(uint16(addr.(*net.UDPAddr).Port))
	}
}

// wideMX: 30 MX whose targets have an A and an AAAA each: the answer (about
// 700 bytes) fits 1232, the additional records (about 1500) do not.
var wideMX = func() string {
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, "wide MX 10 wmx%02d.wide\nwmx%02d.wide A 192.0.2.%d\nwmx%02d.wide AAAA 2001:db8::%d\n", i, i, i+1, i, i+1)
	}
	return b.String()
}()

// setLoopback brings up lo in the current network namespace with mtu and,
// when v6, waits for ::1.
func setLoopback(t *testing.T, mtu uint32, v6 bool) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		t.Fatal(err)
	}
	ifr.SetUint32(mtu)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr); err != nil {
		t.Fatalf("lo mtu: %v", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Fatalf("lo flags: %v", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatalf("lo up: %v", err)
	}
	if !v6 {
		return
	}
	for range 50 { // ::1 appears once lo is up (duplicate address detection is off on lo)
		if c, err := net.ListenPacket("udp6", "[::1]:0"); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no ::1 on lo")
}

// capturePackets opens a packet socket on lo and returns a function that
// reads what was captured so far and checks every IP packet sent from the
// UDP port: IPv4 with DF and ID 0 and no fragment, IPv6 without a fragment
// header. It returns how many such packets it saw.
func capturePackets(t *testing.T) func(port uint16) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: lo.Index}); err != nil {
		t.Fatalf("bind packet socket: %v", err)
	}
	buf := make([]byte, 65536)
	return func(port uint16) int {
		t.Helper()
		seen := 0
		for {
			n, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			if errors.Is(err, unix.EAGAIN) {
				return seen
			}
			if err != nil {
				t.Fatalf("read packet socket: %v", err)
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype != unix.PACKET_OUTGOING {
				continue // lo shows each packet twice: look at the sending side only
			}
			p := buf[:n]
			switch {
			case len(p) >= 28 && p[0]>>4 == 4 && p[9] == unix.IPPROTO_UDP && binary.BigEndian.Uint16(p[20:]) == port:
				frag := binary.BigEndian.Uint16(p[6:])
				if frag != 0x4000 || binary.BigEndian.Uint16(p[4:]) != 0 {
					t.Errorf("IPv4 reply from port %d: flags/offset %#04x ID %d, want DF only and ID 0", port, frag, binary.BigEndian.Uint16(p[4:]))
				}
				seen++
			case len(p) >= 48 && p[0]>>4 == 6 && binary.BigEndian.Uint16(p[40:]) == port:
				if p[6] != unix.IPPROTO_UDP {
					t.Errorf("IPv6 reply from port %d: next header %d, want UDP (no fragment header)", port, p[6])
				}
				seen++
			case len(p) >= 48 && p[0]>>4 == 6 && p[6] == unix.IPPROTO_FRAGMENT:
				t.Errorf("IPv6 fragment on the loopback")
			case len(p) >= 20 && p[0]>>4 == 4 && binary.BigEndian.Uint16(p[6:])&0x3fff != 0:
				t.Errorf("IPv4 fragment on the loopback")
			}
		}
	}
}

// htons is v in network byte order, as the packet socket's protocol wants it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
