package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"
)

// The generated queries are well-formed: one question for www.example.com.
// A or AAAA, and an OPT with one ECS option that miekg/dns accepts.
func TestGenerate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "q.bin")
	if err := generate(file, "../../testdata/geoip/GeoIP2-City-Test.mmdb", "example.com.", 200); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	n, fams := 0, map[uint16]int{}
	for len(b) > 0 {
		l := int(binary.BigEndian.Uint16(b))
		m := new(dns.Msg)
		if err := m.Unpack(b[2 : 2+l]); err != nil {
			t.Fatalf("query %d: %v", n, err)
		}
		b = b[2+l:]
		if len(m.Question) != 1 || m.Question[0].Name != "www.example.com." || (m.Question[0].Qtype != dns.TypeA && m.Question[0].Qtype != dns.TypeAAAA) {
			t.Fatalf("query %d: %v", n, m.Question)
		}
		o := m.IsEdns0()
		if o == nil || o.UDPSize() != 1232 || len(o.Option) != 1 {
			t.Fatalf("query %d: opt %v", n, o)
		}
		e, ok := o.Option[0].(*dns.EDNS0_SUBNET)
		if !ok || e.SourceScope != 0 || (e.Family == 1 && e.SourceNetmask != 24) || (e.Family == 2 && e.SourceNetmask != 48) {
			t.Fatalf("query %d: ecs %v", n, o.Option[0])
		}
		fams[e.Family]++
		n++
	}
	if n != 200 || fams[1] == 0 || fams[2] == 0 {
		t.Errorf("%d queries, families %v", n, fams)
	}
}
