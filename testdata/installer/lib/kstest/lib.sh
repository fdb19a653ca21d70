# shellcheck shell=sh
# Functions shared by /init and the emulated dracut hooks of kickstand's test installer.
# Plain busybox ash. Kept apart from /init so the host-side Go tests can source this file and
# check the kernel command line parser without booting anything.

KS_LOG=${KS_LOG:-/tmp/anaconda.log}
KS_FILE=${KS_FILE:-/run/install/ks.cfg} # where the fetched kickstart goes, as in Anaconda
KS_TMP=${KS_TMP:-/tmp}

# say prints one serial-console marker. Tests match "KSTEST: <what> ..." lines, so every fact a
# test may want goes through here; the copy in $KS_LOG is what %onerror snippets upload.
say() {
	echo "KSTEST: $*"
	echo "KSTEST: $*" >>"$KS_LOG" 2>/dev/null
}

uptime_s() { cut -d' ' -f1 /proc/uptime 2>/dev/null; }

# cmdline_get NAME prints the value of the last NAME=value in $CMDLINE (dracut's getarg keeps the
# last one too); it returns 1 when absent. A bare NAME yields an empty value and status 0.
cmdline_get() {
	_found=1 _val=
	set -f # a '*' on the command line must not expand to file names
	for _a in $CMDLINE; do
		case $_a in
		"$1"=*) _val=${_a#*=} _found=0 ;;
		"$1") _val= _found=0 ;;
		esac
	done
	set +f
	[ "$_found" = 0 ] && printf '%s' "$_val"
	return $_found
}

# cmdline_all NAME prints every NAME=value, one per line (ip= and nameserver= repeat).
cmdline_all() {
	set -f
	for _a in $CMDLINE; do
		case $_a in "$1"=*) printf '%s\n' "${_a#*=}" ;; esac
	done
	set +f
}

# split_ip splits a dracut ip= value on ':' while keeping [bracketed] IPv6 fields whole; the
# fields land in F1..F9 (brackets removed) and their count in NF.
split_ip() {
	_s=$1 NF=0
	for _i in 1 2 3 4 5 6 7 8 9; do eval "F$_i="; done
	while [ "$NF" -lt 9 ]; do
		NF=$((NF + 1))
		case $_s in
		\[*)
			_f=${_s%%]*}
			_f=${_f#\[}
			_s=${_s#*]}
			;;
		*)
			_f=${_s%%:*}
			_s=${_s#"$_f"}
			;;
		esac
		eval "F$NF=\$_f"
		case $_s in
		:*) _s=${_s#:} ;;
		*) break ;;
		esac
	done
}

is_ipv4() {
	case $1 in
	*[!0-9.]* | '' | *..* | .* | *.) return 1 ;;
	esac
	_o=$(echo "$1" | tr . ' ')
	set -- $_o
	[ $# -eq 4 ] || return 1
	for _o; do
		case $_o in 0 | [1-9] | [1-9][0-9] | 1[0-9][0-9] | 2[0-4][0-9] | 25[0-5]) ;; *) return 1 ;; esac
	done
}

# mask_to_prefix accepts a dotted netmask or a prefix length and prints the prefix length.
mask_to_prefix() {
	case $1 in
	[0-9] | [12][0-9] | 3[0-2])
		printf '%s' "$1"
		return
		;;
	esac
	is_ipv4 "$1" || return 1
	_p=0 _end=0
	for _o in $(echo "$1" | tr . ' '); do
		# Once an octet is not 255 the rest must be 0: 255.0.255.0 is not a netmask.
		[ "$_end" = 1 ] && [ "$_o" != 0 ] && return 1
		case $_o in
		255) _p=$((_p + 8)) ;;
		254) _p=$((_p + 7)) _end=1 ;; 252) _p=$((_p + 6)) _end=1 ;;
		248) _p=$((_p + 5)) _end=1 ;; 240) _p=$((_p + 4)) _end=1 ;;
		224) _p=$((_p + 3)) _end=1 ;; 192) _p=$((_p + 2)) _end=1 ;;
		128) _p=$((_p + 1)) _end=1 ;; 0) _end=1 ;;
		*) return 1 ;;
		esac
	done
	printf '%s' "$_p"
}

# parse_ip turns one ip= value into IP_MODE (dhcp, dhcp6, auto6, static4, static6 or unknown),
# IP_ADDR, IP_PREFIX, IP_GW, IP_HOST, IP_IFACE, IP_DNS (space separated). Legacy EL6 "ip=<addr>"
# takes its mask, gateway and DNS from netmask=, gateway= and dns=.
parse_ip() {
	IP_MODE=unknown IP_ADDR= IP_PREFIX= IP_GW= IP_HOST= IP_IFACE= IP_DNS=
	split_ip "$1"
	case $NF in
	1)
		case $F1 in
		dhcp | on | any) IP_MODE=dhcp ;;
		dhcp6) IP_MODE=dhcp6 ;;
		auto6 | either6) IP_MODE=auto6 ;;
		*)
			if is_ipv4 "$F1"; then
				# EL6's loader needs netmask= beside a bare address; without one, nothing is set up.
				IP_MODE=static4 IP_ADDR=$F1
				IP_PREFIX=$(mask_to_prefix "$(cmdline_get netmask)") && [ -n "$IP_PREFIX" ] ||
					IP_MODE=unknown IP_PREFIX=
				IP_GW=$(cmdline_get gateway)
				IP_DNS=$(cmdline_get dns | tr , ' ')
			fi
			;;
		esac
		;;
	2)
		IP_IFACE=$F1
		case $F2 in
		dhcp | on | any) IP_MODE=dhcp ;;
		dhcp6) IP_MODE=dhcp6 ;;
		auto6 | either6) IP_MODE=auto6 ;;
		esac
		;;
	*)
		IP_IFACE=$F6 IP_HOST=$F5
		case $F7 in
		none | off | static | '')
			IP_ADDR=${F1%/*}
			IP_GW=$F3
			IP_PREFIX=$F4
			case $F1 in */*) IP_PREFIX=${F1#*/} ;; esac
			case $IP_ADDR in
			*:*)
				IP_MODE=static6
				[ -n "$IP_PREFIX" ] || IP_PREFIX=64
				case $IP_PREFIX in
				[0-9] | [1-9][0-9] | 1[01][0-9] | 12[0-8]) ;;
				*) IP_MODE=unknown ;;
				esac
				;;
			*)
				is_ipv4 "$IP_ADDR" && IP_MODE=static4
				IP_PREFIX=$(mask_to_prefix "${IP_PREFIX:-24}") || IP_MODE=unknown
				;;
			esac
			# ip=<addr>:...:none:<dns1>:<dns2>; the :<mtu>:<mac> variant has a number or a MAC here.
			for _d in "$F8" "$F9"; do
				case $_d in *.*.*.* | *:*:*) IP_DNS="$IP_DNS $_d" ;; esac
			done
			IP_DNS=${IP_DNS# }
			;;
		dhcp | on | any) IP_MODE=dhcp ;;
		dhcp6) IP_MODE=dhcp6 ;;
		auto6 | either6) IP_MODE=auto6 ;;
		esac
		;;
	esac
}

# resolve_iface maps what the command line may name an interface by (a name, a MAC, BOOTIF's
# 01-aa-bb-... form) to a kernel interface name; anything unknown falls back to eth0.
resolve_iface() {
	_want=$1
	case $_want in
	'' | bootif | link) _want=$(cmdline_get BOOTIF) || _want= ;;
	esac
	case $_want in
	01-??-??-??-??-??-??) _want=$(echo "${_want#01-}" | tr - :) ;;
	esac
	case $_want in
	??:??:??:??:??:??)
		for _n in /sys/class/net/*; do
			if [ "$(cat "$_n/address" 2>/dev/null)" = "$(echo "$_want" | tr A-F a-f)" ]; then
				printf '%s' "${_n##*/}"
				return
			fi
		done
		_want=
		;;
	esac
	printf '%s' "${_want:-eth0}"
}

# wait_for SECONDS COMMAND... polls COMMAND every 0.2 s until it succeeds or time runs out.
wait_for() {
	_n=$(($1 * 5))
	shift
	while [ "$_n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.2
		_n=$((_n - 1))
	done
	"$@"
}

has_iface() { [ -e "/sys/class/net/$1" ]; }
has_carrier() { [ "$(cat "/sys/class/net/$1/carrier" 2>/dev/null)" = 1 ]; }
# busybox ip has no "tentative"/"-tentative" address filters, so read the flags from the listing.
no_tentative6() { ! ip -6 addr show dev "$1" 2>/dev/null | grep -q tentative; }
has_default6() { ip -6 route show 2>/dev/null | grep -q '^default'; }
has_global6() { ip -6 addr show dev "$1" 2>/dev/null | grep 'scope global' | grep -v tentative | grep -q inet6; }

# net_report prints addresses and routes as markers, the first thing to read when a fetch fails.
net_report() {
	ip addr show 2>&1 | while IFS= read -r _l; do say "net addr $_l"; done
	ip -4 route show 2>&1 | while IFS= read -r _l; do say "net route4 $_l"; done
	ip -6 route show 2>&1 | while IFS= read -r _l; do say "net route6 $_l"; done
}

# extract_sections KIND writes the body of every %KIND section to /tmp/ks-KIND-N and its header
# line to /tmp/ks-KIND-N.hdr; it prints N. Another section header also ends a section, as
# Anaconda's older syntax allowed.
extract_sections() {
	_n=0 _in=0
	while IFS= read -r _line || [ -n "$_line" ]; do
		case $_line in
		%end* | %pre* | %post* | %packages* | %onerror* | %traceback* | %addon* | %anaconda* | %ksappend*)
			_in=0
			;;
		esac
		case $_line in
		"%$1" | "%$1 "* | "%$1	"*)
			_n=$((_n + 1)) _in=1
			printf '%s\n' "$_line" >"$KS_TMP/ks-$1-$_n.hdr"
			: >"$KS_TMP/ks-$1-$_n"
			continue
			;;
		esac
		[ "$_in" = 1 ] && printf '%s\n' "$_line" >>"$KS_TMP/ks-$1-$_n"
	done <"$KS_FILE"
	echo "$_n"
}

# run_sections KIND runs each extracted section with busybox sh (bash-only syntax will fail, as it
# would on a minimal image); the curl shim on PATH turns callback lines into busybox wget calls.
# It returns 1 when a section with --erroronfail failed.
run_sections() {
	_count=$(extract_sections "$1")
	_failed=0
	_i=1
	while [ "$_i" -le "$_count" ]; do
		_hdr=$(cat "$KS_TMP/ks-$1-$_i.hdr")
		case $_hdr in
		*--interpreter* | *--interpreter=*)
			_interp=$(echo "$_hdr" | sed -n 's/.*--interpreter[= ]\([^ ]*\).*/\1/p')
			case ${_interp##*/} in
			sh | bash | ash | dash) ;;
			*)
				say "$1 skipped n=$_i interpreter=$_interp"
				_i=$((_i + 1))
				continue
				;;
			esac
			;;
		esac
		say "$1 start n=$_i header=$_hdr"
		(cd "$KS_TMP" && timeout 300 sh "$KS_TMP/ks-$1-$_i"; echo $? >"$KS_TMP/ks-$1-$_i.rc") 2>&1 |
			tee -a "$KS_LOG"
		_rc=$(cat "$KS_TMP/ks-$1-$_i.rc")
		say "$1 rc=$_rc n=$_i"
		case $_hdr in *--erroronfail*) [ "$_rc" = 0 ] || _failed=1 ;; esac
		_i=$((_i + 1))
	done
	return $_failed
}
