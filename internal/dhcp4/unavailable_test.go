package dhcp4

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

func TestStoreUnavailable(t *testing.T) {
	st := &enginetest.Outage{Fake: storetest.NewFake()}
	var logs enginetest.SyncBuffer
	h := newHarness(t, st, "server", func(o *dhcpengine.Options) { o.Log = slog.New(slog.NewTextHandler(&logs, nil)) }).start()

	const known = "52:54:00:00:00:51"
	ack := h.one(req(t, h.one(packet(t, known))))
	if ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("before the outage: %v", ack.MessageType())
	}
	addr := netip.MustParseAddr(ack.YourIPAddr.String())
	// Some of the hour's lease passes before the outage.
	time.Sleep(1500 * time.Millisecond)

	st.Down.Store(true)
	renew := packet(t, known, dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest))
	renew.ClientIPAddr = ack.YourIPAddr
	for i := 0; i < 3; i++ {
		r := h.one(renew)
		if r.MessageType() != dhcpv4.MessageTypeAck || !r.YourIPAddr.Equal(ack.YourIPAddr) {
			t.Fatalf("renewal while down: %v %v, want ACK of %v", r.MessageType(), r.YourIPAddr, addr)
		}
		if lt := r.IPAddressLeaseTime(0); lt < 59*time.Minute || lt >= time.Hour {
			t.Errorf("renewal while down granted %v, want what is left of the hour", lt)
		}
	}
	// The known client rebooting gets its address offered again.
	if o := h.one(packet(t, known)); !o.YourIPAddr.Equal(ack.YourIPAddr) {
		t.Errorf("known client offered %v while down, want %v", o.YourIPAddr, addr)
	}
	// A new client gets nothing: no guess, no NAK.
	for _, mac := range []string{"52:54:00:00:00:52", "52:54:00:00:00:53"} {
		if out := h.do(packet(t, mac), serverPort); len(out) != 0 {
			t.Errorf("new client %s answered while the store is down: %v", mac, out[0].P.MessageType())
		}
	}
	initReboot := packet(t, "52:54:00:00:00:54", dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 150))))
	if out := h.do(initReboot, serverPort); len(out) != 0 {
		t.Errorf("unknown lease REQUEST answered while down: %v", out[0].P.MessageType())
	}
	s := h.s.Stats()
	if !s.StoreDown || s.Refused < 3 || s.FromMemory < 4 {
		t.Errorf("stats while down: %+v", s)
	}
	if n := strings.Count(logs.String(), "lease store unavailable"); n != 1 {
		t.Errorf("%d outage log lines for one outage, want 1:\n%s", n, logs.String())
	}

	st.Down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for h.s.Stats().StoreDown && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if h.s.Stats().StoreDown {
		t.Fatal("store back, but the server still says it is down")
	}
	if a := h.one(req(t, h.one(packet(t, "52:54:00:00:00:52")))); a.MessageType() != dhcpv4.MessageTypeAck {
		t.Errorf("new client after the outage: %v", a.MessageType())
	}
	if n := strings.Count(logs.String(), "lease store available again"); n != 1 {
		t.Errorf("%d recovery log lines, want 1:\n%s", n, logs.String())
	}
}

func TestDisabledServesNothing(t *testing.T) {
	cfg, err := inventory.Parse("x.yaml", []byte("server: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(dhcpengine.Options{Config: func() *inventory.Config { return cfg }, Booter: &boot.Booter{}, Store: storetest.NewFake()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	<-s.Ready()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := New(dhcpengine.Options{}); err == nil {
		t.Error("New without Config/Booter/Store succeeded")
	}
}

func TestStoreFailureMeansSilence(t *testing.T) {
	cfg, _ := setup(t, storetest.NewFake(), "server", "ksbr0")
	s, err := New(dhcpengine.Options{Config: func() *inventory.Config { return cfg }, Store: storetest.Broken{},
		Booter: &boot.Booter{Store: storetest.Broken{}, Config: func() *inventory.Config { return cfg }}})
	if err != nil {
		t.Fatal(err)
	}
	l := &link{name: "ksbr0", local: netip.MustParseAddr("192.0.2.1"), nets: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}
	h := &harness{Harness: &enginetest.Harness[*Server]{T: t, S: s, Link: l, Rec: &enginetest.Recorder{}}, s: s, link: l}
	h.rec = h.Rec
	h.start()
	if out := h.do(packet(t, "52:54:00:00:00:10", dhcpv4.WithOption(vcBIOS)), serverPort); len(out) != 0 {
		t.Errorf("replied although the store is down: %v", out)
	}
}
