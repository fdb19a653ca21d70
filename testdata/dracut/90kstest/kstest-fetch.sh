#!/bin/sh
# Sourced by dracut's ifup with $1 = the interface, after every earlier online hook (kickstand's
# 10-kickstand-wait-v6-route.sh among them). Like Anaconda's fetch it tries once.
kstest_say() {
    echo "KSTEST: $*" >/dev/console 2>/dev/null
}
if [ -z "${kstest_fetched:-}" ]; then
    kstest_fetched=1
    kstest_ks=$(getarg inst.ks=)
    kstest_say "online iface=$1 routes=$(ip -6 route show default 2>/dev/null | tr '\n' ' ')"
    if kstest_err=$(curl -gsS --max-time 20 -o /tmp/ks.cfg "$kstest_ks" 2>&1); then
        kstest_say "ks-fetch ok url=$kstest_ks"
    else
        kstest_host=${kstest_ks#*://}
        kstest_host=${kstest_host%%/*}
        kstest_host=${kstest_host%:*}
        kstest_host=${kstest_host#[}
        kstest_host=${kstest_host%]}
        kstest_say "ks-fetch failed url=$kstest_ks curl=$kstest_err route=$(ip -6 route get "$kstest_host" 2>&1)"
    fi
    kstest_say "done"
    # Let units started beside the initqueue (a test's kickstand-v6fix.service) print their
    # last lines; then power off. A stock dracut image has no poweroff; with -no-reboot this
    # ends QEMU.
    sleep 3
    echo o >/proc/sysrq-trigger
fi
