# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
# The gateway part of scripts/bench.sh (sourced by it; bench_gateway is its entry point).
#
# One private netns (loopback only): one nginx backend serving a small static file with
# keep-alive on 127.0.0.1:8080, and in front of it, one worker each: td's gateway (tdagent,
# workers: 1, access log off) on :8001, nginx as reverse proxy (worker_processes 1, upstream
# keepalive 64, HTTP/1.1) on :8002, haproxy (nbthread 1, mode http, http-reuse always) on :8003.
# wrk -t2 -c64 -d10s --latency against the backend directly and each proxy, in TD_BENCH_GW_ROUNDS
# (2) rounds of alternating peer order (bench-detail lines per round); prints per peer
#   bench: gateway_<peer> rps=N p50_ms=x p99_ms=y cpu_pct=C rss_kib=R
# (means of the rounds; cpu_pct: utime+stime of the proxy's processes over a run, 100 = one
# CPU; rss_kib at the end; for "direct" the backend's), then "bench: gateway_ratio td_vs_nginx=x td_vs_haproxy=y"
# (requests/s) and, from 5000 idle keep-alive connections (one request each) held open,
#   bench: gateway_idle_conn td_bytes_per_conn=N nginx_bytes_per_conn=M
# (RSS delta / 5000). td's figures are "failed=..." while tdagent cannot run a gateway; the peers
# are measured anyway. Uses $TDAGENT, $TMP, $REPO, $DURATION from bench.sh.

GB_NS=tdt-gb-$$
GB_BPFFS=/sys/fs/bpf/tdt-gb-$$
GB_IDLE_N=${TD_BENCH_GW_IDLE:-5000}
GB_ROUNDS=${TD_BENCH_GW_ROUNDS:-2}   # rounds in alternating peer order; figures are their means
declare -A GB_PID GB_PORT=([direct]=8080 [td]=8001 [nginx]=8002 [haproxy]=8003) GB_RPS GB_VAL

gb_log() { echo "bench: $*" >&2; }
gb_in() { nsenter --net="/run/netns/$GB_NS" "$@"; }

gb_cleanup() {
	local p
	for p in "${GB_PID[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${GB_PID[@]}"; do
		for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	GB_PID=()
	if [[ -d $GB_BPFFS ]]; then
		[[ -e /run/netns/$GB_NS ]] && gb_in "$TDAGENT" --cleanup --bpffs "$GB_BPFFS" >/dev/null 2>&1
		rm -rf "$GB_BPFFS"
	fi
	[[ -e /run/netns/$GB_NS ]] && ip netns del "$GB_NS" 2>/dev/null
	return 0
}

# gb_wait_port PORT: until something listens on 127.0.0.1:PORT (5 s)
gb_wait_port() {
	for _ in $(seq 1 50); do
		gb_in ss -Hltn "sport = :$1" | grep -q . && return 0
		sleep 0.1
	done
	gb_log "gateway: nothing listens on :$1"
	return 1
}

# gb_spawn NAME LOG CMD...: start CMD in the netns (file limit raised), GB_PID[NAME] = its pid
gb_spawn() {
	local name=$1 log=$2
	shift 2
	(ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec nsenter --net="/run/netns/$GB_NS" "$@") >"$log" 2>&1 &
	GB_PID[$name]=$!
}

# gb_pids NAME: the process and its children (nginx master + worker)
gb_pids() { [[ -n ${GB_PID[$1]:-} ]] && echo "${GB_PID[$1]}" $(pgrep -P "${GB_PID[$1]}" 2>/dev/null); }
# gb_ticks NAME: utime + stime of those processes, in clock ticks
gb_ticks() {
	local p t=0 s
	for p in $(gb_pids "$1"); do
		s=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + $(awk '{ print $12 + $13 }' <<<"$s")))
	done
	echo "$t"
}
# gb_rss NAME: VmRSS of those processes in KiB
gb_rss() {
	local p r=0
	for p in $(gb_pids "$1"); do
		r=$((r + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	echo "$r"
}

gb_nginx_conf() { # gb_nginx_conf DIR SERVER_BLOCK [UPSTREAM_BLOCK]
	mkdir -p "$1/tmp"
	cat >"$1/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 12000; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
${3:-}
    server {
$2
    }
}
EOF
}

gb_start_peers() {
	local d=$TMP/gw-backend
	mkdir -p "$d/www"
	printf 'hello from the bench backend\n' >"$d/www/index.html"
	gb_nginx_conf "$d" "        listen 127.0.0.1:8080 backlog=4096;
        root $d/www;
        location / { index index.html; }"
	gb_spawn direct "$d/stdout.log" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
	d=$TMP/gw-nginx
	gb_nginx_conf "$d" "        listen 127.0.0.1:8002 backlog=4096;
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }" "    upstream be {
        server 127.0.0.1:8080;
        keepalive 64;
    }"
	gb_spawn nginx "$d/stdout.log" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
	d=$TMP/gw-haproxy
	mkdir -p "$d"
	cat >"$d/haproxy.cfg" <<EOF
global
    maxconn 9000
    nbthread 1
    pidfile $d/haproxy.pid
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 2s
    timeout client 120s
    timeout server 30s
    timeout http-keep-alive 120s
frontend fe
    bind 127.0.0.1:8003
    default_backend be
backend be
    server b1 127.0.0.1:8080
EOF
	gb_spawn haproxy "$d/stdout.log" haproxy -db -f "$d/haproxy.cfg"
	gb_wait_port 8080 && gb_wait_port 8002 && gb_wait_port 8003
}

# gb_start_td: tdagent with only a gateway; 1 when it cannot run one (reason in GB_WHY)
GB_WHY=""
gb_start_td() {
	local cfg=$TMP/gw-td.yaml out
	cat >"$cfg" <<EOF
node:
  bpffs: $GB_BPFFS
  admin_socket: $TMP/gw-td-admin.sock
  metrics_listen: off
gateway:
  listen: [ "127.0.0.1:8001" ]
  workers: 1
  access_log: { path: "off" }
  limits: { idle_timeout: 120s, max_conns: 9000 }
  upstreams:
    be: { backends: [ "127.0.0.1:8080" ], max_idle: 64 }
  routes:
    - { match: { path_prefix: / }, upstream: be }
EOF
	[[ -x $TDAGENT ]] || { GB_WHY=no_tdagent; return 1; }
	if ! out=$("$TDAGENT" --check -c "$cfg" 2>&1); then
		gb_log "gateway: tdagent --check: $(tail -n 1 <<<"$out")"
		GB_WHY=config_rejected
		grep -q 'not supported' <<<"$out" && GB_WHY=not_implemented
		return 1
	fi
	gb_spawn td "$TMP/gw-td.log" "$TDAGENT" -c "$cfg" --bpffs "$GB_BPFFS"
	for _ in $(seq 1 100); do
		grep -q 'ready:' "$TMP/gw-td.log" && break
		kill -0 "${GB_PID[td]}" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q 'ready:' "$TMP/gw-td.log" || ! gb_wait_port 8001; then
		tail -n 5 "$TMP/gw-td.log" >&2
		GB_WHY=agent_not_ready
		return 1
	fi
}

# gb_measure PEER ROUND: wrk against PEER; prints a bench-detail line, adds the figures to
# GB_VAL[PEER] ("rps p50 p99 cpu" per round)
gb_measure() {
	local peer=$1 round=$2 url=http://127.0.0.1:${GB_PORT[$1]}/ t0 t1 s0 s1 out code
	code=$(gb_in curl -s -m 3 -o /dev/null -w '%{http_code}' "$url")
	if [[ $code != 200 ]]; then
		echo "bench: gateway_$peer failed=status_$code"
		return 1
	fi
	gb_in wrk -t1 -c8 -d1s "$url" >/dev/null 2>&1   # warm-up: pools, caches
	t0=$(gb_ticks "$peer")
	s0=$(date +%s.%N)
	gb_in wrk -t2 -c64 "-d${DURATION}s" --latency "$url" >"$TMP/gw-wrk-$peer-$round.txt" 2>&1
	s1=$(date +%s.%N)
	t1=$(gb_ticks "$peer")
	out=$(python3 - "$TMP/gw-wrk-$peer-$round.txt" "$((t1 - t0))" "$(getconf CLK_TCK)" "$s0" "$s1" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
ticks, hz, s0, s1 = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
ms = {"us": 0.001, "ms": 1.0, "s": 1000.0}
def pct(p):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\b" % p, t, re.M)
    return float(m.group(1)) * ms[m.group(2)] if m else -1
rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
e = (sum(int(x) for x in err.groups()) if err else 0) + (int(non2xx.group(1)) if non2xx else 0)
print("%.0f %.3f %.3f %.1f %d" % (float(rps.group(1)) if rps else 0, pct(50), pct(99),
                                   100.0 * ticks / hz / (s1 - s0), e))
EOF
)
	read -r rps p50 p99 cpu errs <<<"$out"
	GB_VAL[$peer]+="$rps $p50 $p99 $cpu;"
	echo "bench-detail: round=$round gateway_$peer rps=$rps p50_ms=$p50 p99_ms=$p99 cpu_pct=$cpu errors=$errs"
	((errs == 0)) || gb_log "gateway_$peer: $errs socket errors / non-2xx (see $TMP/gw-wrk-$peer-$round.txt)"
}

# gb_report PEER: the bench line of PEER (means over its rounds; RSS now)
gb_report() {
	local m
	m=$(python3 -c 'import sys
r = [list(map(float, x.split())) for x in sys.argv[1].split(";") if x.strip()]
m = [sum(c) / len(r) for c in zip(*r)]
print("%.0f %.3f %.3f %.1f" % tuple(m))' "${GB_VAL[$1]}")
	read -r rps p50 p99 cpu <<<"$m"
	GB_RPS[$1]=$rps
	echo "bench: gateway_$1 rps=$rps p50_ms=$p50 p99_ms=$p99 cpu_pct=$cpu rss_kib=$(gb_rss "$1")"
}

# gb_idle PEER: bytes of RSS per idle keep-alive connection; "failed" when not all connected
gb_idle() {
	local peer=$1 r0 r1 hold=$TMP/gw-idle-$1.hold res
	rm -f "$hold"
	r0=$(gb_rss "$peer")
	gb_in python3 "$REPO/scripts/bench_gateway_idle.py" --port "${GB_PORT[$peer]}" \
		--count "$GB_IDLE_N" --hold-file "$hold" --max-s 90 >"$TMP/gw-idle-$peer.out" 2>&1 &
	local cpid=$!
	for _ in $(seq 1 600); do
		grep -q '^ready' "$TMP/gw-idle-$peer.out" && break
		kill -0 "$cpid" 2>/dev/null || break
		sleep 0.1
	done
	sleep 1   # let the proxy settle (buffers released after the one request)
	r1=$(gb_rss "$peer")
	touch "$hold"
	wait "$cpid"
	read -r _ ok failed <<<"$(grep '^ready' "$TMP/gw-idle-$peer.out")"
	if [[ ${ok:-0} -ne $GB_IDLE_N ]]; then
		gb_log "gateway idle $peer: ${ok:-0} of $GB_IDLE_N connections (${failed:-?} failed)"
		echo failed
		return 1
	fi
	echo $(((r1 - r0) * 1024 / GB_IDLE_N))
}

gb_main() {
	local peer r td=yes r_ng r_ha idle_td idle_ng
	local -a order
	trap gb_cleanup EXIT
	trap 'exit 130' INT TERM
	topo_bpffs_mount
	ip netns add "$GB_NS" && ip -n "$GB_NS" link set lo up || return 1
	gb_in sysctl -q -w net.core.somaxconn=4096 net.ipv4.ip_local_port_range="10000 65000"
	gb_start_peers || { echo "bench: gateway failed=peers_not_listening"; return 1; }
	if ! gb_start_td; then
		echo "bench: gateway_td failed=$GB_WHY"
		td=no
	fi
	gb_log "gateway: wrk -t2 -c64 -d${DURATION}s --latency per peer, one worker per proxy," \
		"$GB_ROUNDS rounds in alternating order, netns $GB_NS"
	for ((r = 1; r <= GB_ROUNDS; r++)); do
		if ((r % 2)); then order=(direct td nginx haproxy); else order=(haproxy nginx td direct); fi
		for peer in "${order[@]}"; do
			[[ $peer == td && $td == no ]] && continue
			gb_measure "$peer" "$r" || { [[ $peer == td ]] && td=no; }
		done
	done
	for peer in direct td nginx haproxy; do
		[[ -n ${GB_VAL[$peer]:-} ]] && gb_report "$peer"
	done
	if [[ $td == yes && -n ${GB_RPS[nginx]:-} && -n ${GB_RPS[haproxy]:-} ]]; then
		read -r r_ng r_ha <<<"$(python3 -c "import sys; a,b,c=map(float,sys.argv[1:]); print('%.2f %.2f' % (a/b if b else 0, a/c if c else 0))" \
			"${GB_RPS[td]}" "${GB_RPS[nginx]}" "${GB_RPS[haproxy]}")"
		echo "bench: gateway_ratio td_vs_nginx=$r_ng td_vs_haproxy=$r_ha"
	else
		echo "bench: gateway_ratio failed=td_not_measured"
	fi
	idle_ng=$(gb_idle nginx)
	if [[ $td == yes ]]; then idle_td=$(gb_idle td); else idle_td=failed; fi
	echo "bench: gateway_idle_conn td_bytes_per_conn=$idle_td nginx_bytes_per_conn=$idle_ng"
	[[ $td == yes && $idle_td != failed && $idle_ng != failed ]]
}

# bench_gateway: the whole part in a subshell, so its own trap cleans up on any exit
bench_gateway() { (gb_main); }
