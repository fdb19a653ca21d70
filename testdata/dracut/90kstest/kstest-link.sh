#!/bin/sh
# Sourced by dracut's ifup with $1 = the interface, before every other online hook: tells the
# test that the address is configured, so it can start the router late on purpose.
echo "KSTEST: link up iface=$1 addrs=$(ip -6 -o addr show dev "$1" scope global 2>/dev/null | tr '\n' ' ')" >/dev/console 2>/dev/null
