# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
# The forward-proxy part of scripts/bench.sh (sourced by it; bench_proxy is its entry point).
#
# One private netns (loopback only). Origin: nginx (one worker, keep-alive) on 127.0.0.1:8080
# serving a 1 KiB file as /hit (Cache-Control: max-age=3600) and as /miss (Cache-Control:
# no-store). Proxies, each with its own config in a temp dir, access logs off:
#   td         tdagent forward_proxy (workers: 1, cache 64 MiB) on :3128
#   squid      squid -N (one process, memory cache 64 MB, no cache_dir) on :3129
#   tinyproxy  tinyproxy -d (no cache; 1.11: a thread per connection, MaxClients 128) on :3130; it
#              closes the client connection after each response (wrk reconnects; its "read"
#              socket errors are those closes, reported as read_closes, not as errors)
# Load: wrk -t2 -c50 -dDURATION --latency connected to the proxy; wrk has no proxy support, so a
# generated Lua script sets wrk.path to the absolute URL (http://127.0.0.1:8080/hit or /miss)
# and Host to the origin: every request is an absolute-form proxy request on a keep-alive
# client connection. The origin is a literal loopback address (no DNS in the measurement; td's
# deny_private_destinations is turned off for it).
# Cases: misses (/miss: every request goes to the origin) for td, squid, tinyproxy; hits (/hit,
# stored by a warm-up) for td and squid (tinyproxy has no cache). TD_BENCH_PROXY_ROUNDS (2)
# rounds in alternating peer order; figures are the means of the rounds; rss_kib is the proxy's
# process's VmRSS (with any child processes) at the end. Prints
#   bench: proxy_<peer>_<miss|hit> rps=<n> p99_ms=<x> rss_kib=<k>
#   bench: proxy_ratio miss_td_vs_squid=x miss_td_vs_tinyproxy=y hit_td_vs_squid=z   (requests/s)
# td's lines are "failed=<why>" while tdagent cannot run a forward proxy; the peers are measured
# anyway. Uses $TDAGENT, $TMP, $DURATION from bench.sh.

PB_NS=tdt-pb-$$
PB_BPFFS=/sys/fs/bpf/tdt-pb-$$
PB_ROUNDS=${TD_BENCH_PROXY_ROUNDS:-2}
declare -A PB_PID PB_PORT=([td]=3128 [squid]=3129 [tinyproxy]=3130) PB_VAL PB_RPS
PB_ORIGIN=http://127.0.0.1:8080

pb_log() { echo "bench: $*" >&2; }
pb_in() { nsenter --net="/run/netns/$PB_NS" "$@"; }

pb_cleanup() {
	local p
	for p in "${PB_PID[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PB_PID[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	PB_PID=()
	if [[ -d $PB_BPFFS ]]; then
		[[ -e /run/netns/$PB_NS ]] && pb_in "$TDAGENT" --cleanup --bpffs "$PB_BPFFS" >/dev/null 2>&1
		rm -rf "$PB_BPFFS"
	fi
	[[ -e /run/netns/$PB_NS ]] && ip netns del "$PB_NS" 2>/dev/null
	return 0
}

# pb_wait_port PORT: until something listens on 127.0.0.1:PORT (10 s)
pb_wait_port() {
	for _ in $(seq 1 100); do
		pb_in ss -Hltn "sport = :$1" | grep -q . && return 0
		sleep 0.1
	done
	pb_log "proxy: nothing listens on :$1"
	return 1
}

# pb_spawn NAME LOG CMD...: CMD in the netns (file limit raised), PB_PID[NAME] = its pid
pb_spawn() {
	local name=$1 log=$2
	shift 2
	(ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec nsenter --net="/run/netns/$PB_NS" "$@") >"$log" 2>&1 &
	PB_PID[$name]=$!
}

# pb_pids NAME: the process and its children; pb_rss NAME: their VmRSS in KiB
pb_pids() { [[ -n ${PB_PID[$1]:-} ]] && echo "${PB_PID[$1]}" $(pgrep -P "${PB_PID[$1]}" 2>/dev/null); }
pb_rss() {
	local p r=0
	for p in $(pb_pids "$1"); do
		r=$((r + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	echo "$r"
}

pb_start_origin() {
	local d=$TMP/pb-nginx
	mkdir -p "$d/www" "$d/tmp"
	head -c 1024 /dev/zero | tr '\0' 'x' >"$d/www/body.txt"
	chmod -R a+rX "$d"
	cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    default_type text/plain;
    server {
        listen 127.0.0.1:8080 reuseport backlog=4096;
        location = /hit { alias $d/www/body.txt; add_header Cache-Control "max-age=3600"; }
        location = /miss { alias $d/www/body.txt; add_header Cache-Control "no-store"; etag off; }
    }
}
EOF
	pb_spawn origin "$d/stdout.log" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
	pb_wait_port 8080
}

pb_start_squid() {
	local d=$TMP/pb-squid
	mkdir -p "$d"
	cat >"$d/squid.conf" <<EOF
http_port 127.0.0.1:${PB_PORT[squid]}
pid_filename $d/squid.pid
cache_log $d/cache.log
access_log none
cache_store_log none
cache_mem 64 MB
maximum_object_size_in_memory 8 MB
memory_cache_mode always
acl SSL_ports port 443
acl CONNECT method CONNECT
http_access deny CONNECT !SSL_ports
http_access allow localhost
http_access deny all
max_filedescriptors 16384
coredump_dir $d
shutdown_lifetime 0 seconds
dns_nameservers 127.0.0.1
EOF
	chown -R proxy "$d" 2>/dev/null
	pb_spawn squid "$d/stdout.log" squid -N -f "$d/squid.conf"
	pb_wait_port "${PB_PORT[squid]}"
}

pb_start_tinyproxy() {
	local d=$TMP/pb-tinyproxy
	mkdir -p "$d"
	cat >"$d/tinyproxy.conf" <<EOF
User nobody
Group nogroup
Port ${PB_PORT[tinyproxy]}
Listen 127.0.0.1
Timeout 60
MaxClients 128
LogLevel Critical
LogFile "$d/tinyproxy.log"
PidFile "$d/tinyproxy.pid"
Allow 127.0.0.1
ConnectPort 443
EOF
	chmod -R a+rwX "$d"
	pb_spawn tinyproxy "$d/stdout.log" tinyproxy -d -c "$d/tinyproxy.conf"
	pb_wait_port "${PB_PORT[tinyproxy]}"
}

pb_start_td() {
	local cfg=$TMP/pb-td.yaml out
	cat >"$cfg" <<EOF
node:
  bpffs: $PB_BPFFS
  admin_socket: $TMP/pb-td-admin.sock
  metrics_listen: off
forward_proxy:
  listen: [ "127.0.0.1:${PB_PORT[td]}" ]
  workers: 1
  deny_private_destinations: false   # the origin is on loopback
  cache: { memory: 64MiB, max_object: 8MiB }
  access_log: "off"
  max_conns: 9000
EOF
	[[ -x $TDAGENT ]] || { PB_WHY=no_tdagent; return 1; }
	if ! out=$("$TDAGENT" --check -c "$cfg" 2>&1); then
		pb_log "proxy: tdagent --check: $(tail -n 1 <<<"$out")"
		PB_WHY=config_rejected
		grep -qE 'not supported|unknown (key|section)' <<<"$out" && PB_WHY=not_implemented
		return 1
	fi
	pb_spawn td "$TMP/pb-td.log" "$TDAGENT" -c "$cfg" --bpffs "$PB_BPFFS"
	for _ in $(seq 1 100); do
		grep -q 'ready:' "$TMP/pb-td.log" && break
		kill -0 "${PB_PID[td]}" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q 'ready:' "$TMP/pb-td.log" || ! pb_wait_port "${PB_PORT[td]}"; then
		tail -n 5 "$TMP/pb-td.log" >&2
		PB_WHY=agent_not_ready
		return 1
	fi
}

# pb_lua CASE: the wrk script of CASE (miss|hit): absolute-form requests for the origin's URL
pb_lua() {
	local f=$TMP/pb-$1.lua
	cat >"$f" <<EOF
-- absolute-form requests through a proxy: wrk connects to the proxy given on its command line
wrk.path = "$PB_ORIGIN/$1"
wrk.headers["Host"] = "${PB_ORIGIN#http://}"
EOF
	echo "$f"
}

# pb_check PEER CASE: one request through PEER answers 200 (hit: twice, the second from the
# cache: td's Cache-Status, Squid's X-Cache); prints nothing, returns 1 with a reason logged
pb_check() {
	local peer=$1 c=$2 px=http://127.0.0.1:${PB_PORT[$1]} code h
	code=$(pb_in curl -s -m 5 -x "$px" -o /dev/null -w '%{http_code}' "$PB_ORIGIN/$c")
	[[ $code == 200 ]] || { pb_log "proxy_${peer}_$c: status $code"; return 1; }
	[[ $c == hit ]] || return 0
	h=$(pb_in curl -s -m 5 -x "$px" -D - -o /dev/null "$PB_ORIGIN/$c" | tr -d '\r')
	if ! grep -qiE '^(cache-status: td *;.*hit|x-cache: hit)' <<<"$h"; then
		pb_log "proxy_${peer}_hit: the second GET was not served from the cache"
		return 1
	fi
}

# pb_measure PEER CASE ROUND: wrk through PEER; a bench-detail line, the figures into PB_VAL
pb_measure() {
	local peer=$1 c=$2 round=$3 lua out f=$TMP/pb-wrk-$1-$2-$3.txt rps p99 errs
	lua=$(pb_lua "$c")
	pb_in wrk -t1 -c8 -d1s -s "$lua" "http://127.0.0.1:${PB_PORT[$peer]}" >/dev/null 2>&1   # warm-up
	pb_in wrk -t2 -c50 "-d${DURATION}s" --latency -s "$lua" "http://127.0.0.1:${PB_PORT[$peer]}" >"$f" 2>&1
	out=$(python3 - "$f" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
ms = {"us": 0.001, "ms": 1.0, "s": 1000.0}
m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\b", t, re.M)
rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
# wrk counts a connection the proxy closes after a complete response as a read error:
# Tinyproxy closes every client connection after one response (no keep-alive)
g = [int(x) for x in err.groups()] if err else [0, 0, 0, 0]
e = g[0] + g[2] + g[3] + (int(non2xx.group(1)) if non2xx else 0)
print("%.0f %.3f %d %d" % (float(rps.group(1)) if rps else 0,
                           float(m.group(1)) * ms[m.group(2)] if m else -1, e, g[1]))
EOF
)
	read -r rps p99 errs closes <<<"$out"
	PB_VAL[$peer,$c]+="$rps $p99;"
	echo "bench-detail: round=$round proxy_${peer}_$c rps=$rps p99_ms=$p99 errors=$errs read_closes=$closes"
	((errs == 0)) || pb_log "proxy_${peer}_$c: $errs connect/write/timeout errors or non-2xx (see $f)"
	[[ $peer == tinyproxy ]] || ((closes == 0)) ||
		pb_log "proxy_${peer}_$c: $closes connections closed by the proxy (wrk read errors)"
}

# pb_report PEER CASE: the bench line (means over the rounds, RSS now)
pb_report() {
	local m rps p99
	m=$(python3 -c 'import sys
r = [list(map(float, x.split())) for x in sys.argv[1].split(";") if x.strip()]
print("%.0f %.3f" % tuple(sum(c) / len(r) for c in zip(*r)))' "${PB_VAL[$1,$2]}")
	read -r rps p99 <<<"$m"
	PB_RPS[$1,$2]=$rps
	echo "bench: proxy_$1_$2 rps=$rps p99_ms=$p99 rss_kib=$(pb_rss "$1")"
}

# pb_ratio A B: requests/s of case A over case B ("n/a" when one is missing)
pb_ratio() {
	[[ -n ${PB_RPS[$1]:-} && -n ${PB_RPS[$2]:-} ]] || { echo n/a; return; }
	python3 -c "import sys; a, b = map(float, sys.argv[1:]); print('%.2f' % (a / b if b else 0))" \
		"${PB_RPS[$1]}" "${PB_RPS[$2]}"
}

pb_main() {
	local peer c r td=yes ok=0
	local -a order runs=()
	trap pb_cleanup EXIT
	trap 'exit 130' INT TERM
	command -v squid >/dev/null && command -v tinyproxy >/dev/null ||
		{ echo "bench: proxy failed=squid_or_tinyproxy_missing (scripts/install-deps.sh)"; return 1; }
	topo_bpffs_mount
	ip netns add "$PB_NS" && ip -n "$PB_NS" link set lo up || return 1
	pb_in sysctl -q -w net.core.somaxconn=4096 net.ipv4.ip_local_port_range="10000 65000" \
		net.ipv4.tcp_tw_reuse=1
	pb_start_origin || { echo "bench: proxy failed=origin_not_listening"; return 1; }
	pb_start_squid || { echo "bench: proxy failed=squid_not_listening"; return 1; }
	pb_start_tinyproxy || { echo "bench: proxy failed=tinyproxy_not_listening"; return 1; }
	if ! pb_start_td; then
		echo "bench: proxy_td_miss failed=$PB_WHY"
		echo "bench: proxy_td_hit failed=$PB_WHY"
		td=no
	fi
	for peer in td squid tinyproxy; do
		[[ $peer == td && $td == no ]] && continue
		for c in miss hit; do
			[[ $peer == tinyproxy && $c == hit ]] && continue
			if pb_check "$peer" "$c"; then
				runs+=("$peer,$c")
			else
				echo "bench: proxy_${peer}_$c failed=check"
				[[ $peer == td ]] || ok=1
			fi
		done
	done
	pb_log "proxy: wrk -t2 -c50 -d${DURATION}s --latency, absolute-form requests (wrk Lua" \
		"wrk.path), origin nginx 127.0.0.1:8080, $PB_ROUNDS rounds in alternating order, netns $PB_NS"
	for ((r = 1; r <= PB_ROUNDS; r++)); do
		order=("${runs[@]}")
		if ((r % 2 == 0)); then
			order=()
			for ((i = ${#runs[@]} - 1; i >= 0; i--)); do order+=("${runs[i]}"); done
		fi
		for c in "${order[@]}"; do pb_measure "${c%,*}" "${c#*,}" "$r"; done
	done
	for c in "${runs[@]}"; do pb_report "${c%,*}" "${c#*,}"; done
	echo "bench: proxy_ratio miss_td_vs_squid=$(pb_ratio td,miss squid,miss)" \
		"miss_td_vs_tinyproxy=$(pb_ratio td,miss tinyproxy,miss) hit_td_vs_squid=$(pb_ratio td,hit squid,hit)"
	[[ $td == yes ]] && ((ok == 0))
}

# bench_proxy: the whole part in a subshell, so its own trap cleans up on any exit
bench_proxy() { (pb_main); }
