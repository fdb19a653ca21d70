package dhcpcap

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

func TestReadPcap(t *testing.T) {
	// A capture written by hand: a DHCPv4 ACK and OFFER, a DHCPv6 Reply,
	// a non-UDP frame, and a record cut off by a kill.
	mac := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x10}
	ack, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(net.IP{198, 18, 1, 7}))
	ack.OpCode = dhcpv4.OpcodeBootReply
	offer, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer), dhcpv4.WithYourIP(net.IP{198, 18, 1, 8}))
	offer.OpCode = dhcpv4.OpcodeBootReply
	reply := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply}
	reply.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mac}))
	ia := &dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}}
	ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("2001:db8::1:7"), PreferredLifetime: time.Hour, ValidLifetime: 2 * time.Hour})
	reply.AddOption(ia)
	frame := func(ethType uint16, payload []byte) []byte {
		eth := make([]byte, 14)
		binary.BigEndian.PutUint16(eth[12:], ethType)
		var ip []byte
		if ethType == 0x0800 {
			ip = make([]byte, 20)
			ip[0], ip[9] = 0x45, 17
		} else {
			ip = make([]byte, 40)
			ip[0], ip[6] = 0x60, 17
		}
		udp := make([]byte, 8)
		binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
		return append(append(append(eth, ip...), udp...), payload...)
	}
	var b bytes.Buffer
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	b.Write(hdr)
	for i, f := range [][]byte{frame(0x0800, ack.ToBytes()), frame(0x0800, offer.ToBytes()), frame(0x86dd, reply.ToBytes()), make([]byte, 60)} {
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec[0:], uint32(1700000000+i))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(f)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(f)))
		b.Write(rec)
		b.Write(f)
	}
	b.Write([]byte{1, 2, 3})
	got, err := ReadPcap(&b)
	if err != nil || len(got) != 3 {
		t.Fatalf("ReadPcap = %+v, %v", got, err)
	}
	var bound []Captured
	for _, c := range got {
		if c.Bound() {
			bound = append(bound, c)
		}
	}
	if len(bound) != 2 || bound[0].Client != mac.String() || bound[0].Addrs[0].String() != "198.18.1.7" || bound[0].At.Unix() != 1700000000 ||
		bound[1].Family != 6 || bound[1].Client != "00030001525400000010" || bound[1].Addrs[0].String() != "2001:db8::1:7" {
		t.Fatalf("bindings = %+v", bound)
	}
	if _, err := ReadPcap(strings.NewReader("not a pcap file at all.....")); err == nil {
		t.Error("garbage accepted as pcap")
	}
}
