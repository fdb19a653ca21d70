# shellcheck shell=sh
# Anaconda's dracut module fetches the kickstart from initqueue/online/11-fetch-kickstart-net.sh,
# as soon as the interface is up, whether or not a default route exists yet. It is emulated here:
# one attempt, no retry (dracut's curl does not retry a failed connect), and the outcome as a
# marker. Sourced by /init with the interface as $1 and KS_URL set.
. /lib/kstest/lib.sh

ks_fetch() {
	[ -n "$KS_URL" ] || {
		say "ks-fetch skipped: no inst.ks= on the command line"
		return 0
	}
	mkdir -p "${KS_FILE%/*}"
	case $KS_URL in
	http://* | https://* | ftp://*) ;;
	*)
		say "ks-fetch failed url=$KS_URL err=unsupported scheme in the test installer"
		return 1
		;;
	esac
	set -- -q -U "curl/7.29.0 (kickstand test installer)" -O "$KS_FILE"
	if cmdline_get inst.ks.sendmac >/dev/null || cmdline_get kssendmac >/dev/null; then
		_i=0
		for _n in /sys/class/net/*; do
			[ "${_n##*/}" = lo ] && continue
			set -- "$@" --header "X-RHN-Provisioning-MAC-$_i: ${_n##*/} $(cat "$_n/address")"
			_i=$((_i + 1))
		done
	fi
	net_report
	# busybox wget's own -T option crashes in Debian's busybox-static 1.35; bound it from outside.
	if timeout 60 wget "$@" "$KS_URL" 2>/tmp/ks-fetch.err; then
		say "ks-fetch ok bytes=$(wc -c <"$KS_FILE" | tr -d ' ') url=$KS_URL"
		return 0
	fi
	_rc=$?
	rm -f "$KS_FILE"
	_err=$(tr '\n' ' ' </tmp/ks-fetch.err)
	[ -n "$_err" ] || _err="wget exit $_rc"
	echo "Warning: failed to fetch kickstart from $KS_URL"
	say "ks-fetch failed url=$KS_URL err=${_err% }"
	return 1
}
ks_fetch
