#!/bin/bash
# kstest: the part of Anaconda's dracut module that kickstand can see from the network, for the
# real-dracut image of scripts/build-dracut-image.sh: once dracut's network-legacy has brought the
# interface up, fetch inst.ks= (as 11-fetch-kickstart-net.sh does), print the outcome on the
# console as "KSTEST: ..." lines, and power the VM off.

check() { return 255; } # only when named with -m

depends() {
    echo network url-lib
    return 0
}

install() {
    inst_multiple curl ip
    inst_hook initqueue/online 05 "$moddir/kstest-link.sh"
    inst_hook initqueue/online 11 "$moddir/kstest-fetch.sh"
}
