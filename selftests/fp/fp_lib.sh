# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
# Shared setup of the forward-proxy scenarios (selftests/netns/test_fp_*.sh). Source after
# selftests/netns/lib.sh. Topology, all of it created here and removed on any exit:
#
#   netns $NS (client + proxy)             netns $ONS (origins)
#     lo 127.0.0.1 (origin :8080 = "loop")   fpo0 10.77.0.2/24: origin.py :80 :22 :8080 ("ext"),
#     fp0 10.77.0.1/24  <---- veth ---->                        TLS origin.py :443 ("tls")
#
# tdagent runs in $NS inside a private mount namespace where $TMP/hosts is /etc/hosts and
# $TMP/resolv.conf (nameserver 127.0.0.1, where nothing listens) is /etc/resolv.conf: names
# resolve only through the test's hosts file and any other name fails at once, without a packet
# leaving the namespace. The proxy listens on 127.0.0.1:$FPORT and 10.77.0.1:$FPORT.
# Origin logs: $TMP/o-ext.log, $TMP/o-tls.log, $TMP/o-loop.log (selftests/fp/origin.py format).
#
# TD_FP_PEER=squid runs Squid instead of tdagent with a fixed equivalent config (open to the
# namespace, cache on, CONNECT 443 only): a way to check the tests' own logic against a real
# proxy; td-specific checks (Via: 1.1 td, Cache-Status "td; ...") fail there by design.
# Sets TMP NS ONS BPFFS ADMIN CFG LOG ALOG MPORT FPORT FP_DIR CERTS PX; exports TD_ADMIN_SOCKET.

FP_DIR=$T_REPO/selftests/fp
TMP=$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")
chmod 755 "$TMP"
NS=$T_PREFIX-fp
ONS=$T_PREFIX-fpo
BPFFS=/sys/fs/bpf/$T_PREFIX
ADMIN=$TMP/run/admin.sock
CFG=$TMP/td.yaml
LOG=$TMP/agent.log
ALOG=$TMP/access.log             # the access log the tests configure (and Squid writes)
CERTS=$TMP/certs
MPORT=9469
FPORT=3128
PX=http://127.0.0.1:$FPORT
FP_PEER=${TD_FP_PEER:-td}
export TD_ADMIN_SOCKET=$ADMIN
FP_PIDS=()
FP_CLEANED=0

fp_cleanup() {
	((FP_CLEANED)) && return 0
	FP_CLEANED=1
	local pid
	t_agent_stop TERM
	for pid in "${FP_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${FP_PIDS[@]}"; do
		for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [[ -d $BPFFS ]]; then
		[[ -e /run/netns/$NS ]] &&
			nsenter --net="/run/netns/$NS" "$TDAGENT" --cleanup --bpffs "$BPFFS" >/dev/null 2>&1
		rm -rf "$BPFFS"
	fi
	[[ -e /run/netns/$NS ]] && ip netns del "$NS" 2>/dev/null
	[[ -e /run/netns/$ONS ]] && ip netns del "$ONS" 2>/dev/null
	rm -rf "$TMP"
	return 0
}
trap fp_cleanup EXIT
trap 'fp_cleanup; exit 130' INT TERM

# in_ns / in_ons CMD...: CMD in the proxy (client) netns / the origin netns
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
in_ons() { nsenter --net="/run/netns/$ONS" "$@"; }

# fp_wait_port NS PORT [TENTHS]: until something listens on PORT in NS
fp_wait_port() {
	local i
	for i in $(seq 1 "${3:-50}"); do
		nsenter --net="/run/netns/$1" ss -Hltn "sport = :$2" | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

# fp_origin NAME NS CERT|"" LISTEN...: one origin.py process logging to $TMP/o-NAME.log
fp_origin() {
	local name=$1 ns=$2 tls=$3 l
	shift 3
	local -a args=(--log "$TMP/o-$name.log" --lifetime 900)
	for l in "$@"; do args+=(--listen "$l"); done
	[[ -n $tls ]] && args+=(--tls "$CERTS/$tls.pem" "$CERTS/$tls.key")
	: >"$TMP/o-$name.log"
	# nsenter execs python3: $! is the server itself
	nsenter --net="/run/netns/$ns" python3 "$FP_DIR/origin.py" "${args[@]}" >"$TMP/o-$name.out" 2>&1 &
	FP_PIDS+=($!)
	for l in "$@"; do
		fp_wait_port "$ns" "${l##*:}" ||
			_t_record FAIL "origin $name listens" "$l" "not listening: $(tail -n 3 "$TMP/o-$name.out")"
	done
}

# fp_up: namespaces, veth, hosts file, certificates, origins; exits the test on failure
fp_up() {
	t_section "netns $NS + $ONS, proxy $FP_PEER on :$FPORT, tmp $TMP"
	topo_bpffs_mount
	if ! ip netns add "$NS" || ! ip netns add "$ONS" || ! ip -n "$NS" link set lo up ||
		! ip -n "$ONS" link set lo up ||
		! ip -n "$NS" link add fp0 type veth peer name fpo0 netns "$ONS" ||
		! ip -n "$NS" addr add 10.77.0.1/24 dev fp0 || ! ip -n "$NS" link set fp0 up ||
		! ip -n "$ONS" addr add 10.77.0.2/24 dev fpo0 || ! ip -n "$ONS" link set fpo0 up; then
		_t_record FAIL "netns up" "$NS and $ONS joined by a veth" "ip failed"
		t_done
	fi
	cat >"$TMP/hosts" <<EOF
127.0.0.1	localhost
127.0.0.1	loop.test
10.77.0.2	www.origin.test api.example blocked.example x.ads.example ads.example
10.77.0.2	y.x.ads.example good.allowed.test other.test ten.test
EOF
	printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$TMP/resolv.conf"
	chmod 644 "$TMP/hosts" "$TMP/resolv.conf"
	if ! sh "$T_REPO/selftests/gw/mkcerts.sh" "$CERTS" >/dev/null; then
		_t_record FAIL "test certificates" "mkcerts.sh ok" "failed"
		t_done
	fi
	chmod 755 "$CERTS"
	chmod 644 "$CERTS"/*
	fp_origin ext "$ONS" "" 10.77.0.2:80 10.77.0.2:22 10.77.0.2:8080
	fp_origin tls "$ONS" api 10.77.0.2:443
	fp_origin loop "$NS" "" 127.0.0.1:8080
	local c
	c=$(in_ns curl -s -m 3 -o /dev/null -w '%{http_code}' http://10.77.0.2/up)
	t_eq "origin reachable over the veth (direct, no proxy)" "200" "$c"
}

# fp_config YAML: write the config ("node:" + YAML, which starts with "forward_proxy:")
fp_config() {
	cat >"$CFG.tmp" <<EOF
# generated by $T_NAME
node:
  bpffs: $BPFFS
  admin_socket: $ADMIN
  metrics_listen: 127.0.0.1:$MPORT
$1
EOF
	mv "$CFG.tmp" "$CFG"
}

# fp_squid_start: TD_FP_PEER=squid, see the header
fp_squid_start() {
	local d=$TMP/squid
	mkdir -p "$d"
	chmod 777 "$d"
	cat >"$d/squid.conf" <<EOF
http_port 127.0.0.1:$FPORT
http_port 10.77.0.1:$FPORT
pid_filename $d/squid.pid
cache_log $d/cache.log
access_log stdio:$ALOG squid
cache_mem 64 MB
maximum_object_size_in_memory 8 MB
cache deny !all
cache allow all
acl SSL_ports port 443
acl CONNECT method CONNECT
http_access deny CONNECT !SSL_ports
http_access allow all
coredump_dir $d
shutdown_lifetime 0 seconds
dns_nameservers 127.0.0.1
hosts_file /etc/hosts
EOF
	: >"$ALOG"
	chown -R proxy "$d" "$ALOG" 2>/dev/null
	nsenter --net="/run/netns/$NS" unshare -m sh -c \
		'mount --bind "$1/hosts" /etc/hosts && mount --bind "$1/resolv.conf" /etc/resolv.conf &&
		 exec squid -N -f "$2"' sh "$TMP" "$d/squid.conf" >"$LOG" 2>&1 &
	T_AGENT_PID=$!
}

# fp_start [DESC]: --check the config, start tdagent (private mount ns, test hosts file), wait
# for ready and the proxy port; exits the test when nothing listens (nothing could be checked)
fp_start() {
	local out rc
	if [[ $FP_PEER == squid ]]; then
		fp_squid_start
	else
		out=$("$TDAGENT" --check -c "$CFG" 2>&1)
		rc=$?
		((rc == 0)) && out=""
		t_eq "tdagent --check accepts the config${1:+ ($1)}" "rc 0" \
			"rc $rc${out:+: $(tail -n 3 <<<"$out" | tr '\n' ' ')}"
		nsenter --net="/run/netns/$NS" unshare -m sh -c \
			'mount --bind "$1/hosts" /etc/hosts && mount --bind "$1/resolv.conf" /etc/resolv.conf &&
			 exec "$2" -c "$3" --bpffs "$4" -v' sh "$TMP" "$TDAGENT" "$CFG" "$BPFFS" >"$LOG" 2>&1 &
		T_AGENT_PID=$!
		for _ in $(seq 1 200); do
			grep -q 'ready:' "$LOG" 2>/dev/null && break
			kill -0 "$T_AGENT_PID" 2>/dev/null || break
			sleep 0.1
		done
	fi
	if ! fp_wait_port "$NS" "$FPORT" 100; then
		_t_record FAIL "proxy listens${1:+ ($1)}" "127.0.0.1:$FPORT" "not listening"
		tail -n 20 "$LOG" | sed 's/^/  | /'
		t_done
	fi
}

# fp_restart [DESC]: stop the proxy and start it again with the current $CFG
fp_restart() {
	t_agent_stop TERM
	for _ in $(seq 1 50); do fp_wait_port "$NS" "$FPORT" 1 || break; sleep 0.1; done
	fp_start "$@"
}

# pcode ARGS...: status code of a curl through the proxy ("000" when nothing answered)
pcode() { in_ns curl -s -m "${PCURL_MAX:-5}" -x "$PX" -o /dev/null -w '%{http_code}' "$@"; }

# preq NAME ARGS...: one request through the proxy; head in $TMP/NAME.h, body in $TMP/NAME.b;
# prints the code
preq() {
	local n=$1
	shift
	rm -f "$TMP/$n.h" "$TMP/$n.b"
	in_ns curl -s -m "${PCURL_MAX:-5}" -x "$PX" -D "$TMP/$n.h" -o "$TMP/$n.b" -w '%{http_code}' "$@"
}

# hdr FILE NAME: value of response header NAME in a curl -D dump ("" when absent; last one)
hdr() { tr -d '\r' <"$1" | awk -v n="$(tr 'A-Z' 'a-z' <<<"$2")" -F': ' 'tolower($1) == n { v = substr($0, length($1) + 3) } END { print v }'; }

# ocount NAME PREFIX: requests origin NAME logged whose path starts with PREFIX
ocount() { grep -cF "\"path\": \"$2" "$TMP/o-$1.log" 2>/dev/null || true; }

# olast NAME PREFIX EXPR: python expression over r = the last request of origin NAME whose path
# starts with PREFIX (h = its headers as {lower-name: value}); "NONE" when there is none
olast() {
	python3 - "$TMP/o-$1.log" "$2" "$3" <<'EOF'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rs = [r for r in rs if r["path"].startswith(sys.argv[2])]
if not rs:
    print("NONE")
    sys.exit(0)
r = rs[-1]
h = {k.lower(): v for k, v in r["headers"]}
try:
    v = eval(sys.argv[3], {"r": r, "h": h, "len": len, "sorted": sorted})
    print(json.dumps(v) if isinstance(v, (list, dict)) else v)
except Exception as e:
    print("ERR:%s" % type(e).__name__)
EOF
}

# fpcheck SCENARIO ARGS...: selftests/fp/fpcheck.py in the client netns, results recorded
# (t_lines reads from a process substitution: in a pipeline it would count in a subshell)
fpcheck() { t_lines < <(in_ns python3 "$FP_DIR/fpcheck.py" "$@" --proxy "$PX" --tmp "$TMP"); }

# scrape: the agent's metrics
scrape() { in_ns curl -sS -m 3 "http://127.0.0.1:$MPORT/metrics"; }

# msum TEXT REGEX: sum of the samples whose "name{labels}" matches REGEX (0 when none)
msum() { awk -v re="$2" '$1 !~ /^#/ && $1 ~ re { s += $NF } END { printf "%d\n", s }' <<<"$1"; }
