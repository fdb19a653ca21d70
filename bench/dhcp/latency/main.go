// Command latency reads a tcpdump capture of a DHCP benchmark (DHCPv4 or
// DHCPv6) and prints how long the server took from each REQUEST to its ACK
// or Reply: count, p50, p99 and max, in milliseconds. bench/dhcp/run.sh
// runs it for kickstand and for Kea at the same offered rate.
package main

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/kickstand/kickstand/internal/dhcpengine/dhcpcap"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: latency capture.pcap")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
	defer f.Close()
	msgs, err := dhcpcap.ReadPcap(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
	d := dhcpcap.Latencies(msgs)
	if len(d) == 0 {
		fmt.Println("0 - - -")
		return
	}
	slices.Sort(d)
	q := func(p float64) string {
		return fmt.Sprintf("%.2f", float64(d[min(len(d)-1, int(p*float64(len(d))))])/float64(time.Millisecond))
	}
	fmt.Println(len(d), q(0.50), q(0.99), q(1))
}
