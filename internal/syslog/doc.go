// Package syslog receives the installer's syslog so that an operator sees
// why an install broke without logging in to the machine (seed 000's author
// had to SSH into each installer). Lines are parsed leniently because the
// senders are a zoo: dracut's and Anaconda's rsyslog (RFC 3164 with or
// without a hostname, sometimes an RFC 3339 timestamp), util-linux logger
// (both RFCs, and octet counting even over UDP), BusyBox and firmware that
// send a bare "<PRI>text". A line that cannot be parsed is still delivered
// (Format "raw") because an ugly line beats a lost one when diagnosing.
//
// The receiver takes UDP (what RFC 5426 and the Anaconda docs describe) and
// TCP (what Anaconda actually configures: inst.syslog writes "*.* @@host",
// which is rsyslog's TCP forwarding). UDP reading never waits for the
// consumer: a bounded queue sits between the socket and the handler, and
// when it is full lines are dropped and counted, so a flood of installer
// logs cannot stall the socket or grow memory. Matching a line to a host
// (by source address and lease) is left to the caller.
package syslog
