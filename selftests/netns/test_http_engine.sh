#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The HTTP/1.1 engine (user/http/server.c) through build/bin/td_http_tool, inside a private netns
# on its loopback, against a python backend (selftests/http/backend.py): keep-alive, pipelining,
# 50 MiB bodies both ways (CL and chunked, sha256, bounded RSS), the strict parsing table,
# hop-by-hop fields, slowloris, idle timeout, 502/504, pool reuse, max_conns, fetch, drain on
# SIGTERM, idle memory per connection; then 5 s of wrk load through td_http_tool to nginx with
# no errors. Usage: test_http_engine.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"

source "$T_REPO/selftests/http/http_lib.sh"
http_setup http
CHECKS=$HTTP_DIR/engine_checks.py
ulimit -n 20000
# a closed SO_REUSEPORT socket hands its queued connections to the others (reload checks)
ip netns exec "$NS" sysctl -qw net.ipv4.tcp_migrate_req=1 2>/dev/null

BE=127.0.0.1:9001
start_bg backend python3 "$HTTP_DIR/backend.py" 9001
start_bg closer python3 "$HTTP_DIR/backend.py" 9002 127.0.0.1 0.4
start_bg main "$TOOL" --listen 127.0.0.1:8001 --upstream $BE --workers 2 --response-timeout 1000 \
	--max-body 104857600 --header-timeout 3000 --idle-timeout 2000
start_bg limited "$TOOL" --listen 127.0.0.1:8002 --upstream $BE --workers 2 --max-body 1000 \
	--max-conns 10
start_bg refused "$TOOL" --listen 127.0.0.1:8003 --upstream 127.0.0.1:1 --workers 1
start_bg fallback "$TOOL" --listen 127.0.0.1:8004 --upstream 127.0.0.1:1 --fallback $BE --workers 1
start_bg closing "$TOOL" --listen 127.0.0.1:8005 --upstream 127.0.0.1:9002 --workers 2
start_bg memory "$TOOL" --listen 127.0.0.1:8006 --upstream $BE --workers 2
# the same engine without io_uring (the sendmsg fallback, docs/http.md "Batched sends")
start_bg nouring env TD_HS_NO_URING=1 "$TOOL" --listen 127.0.0.1:8019 --upstream $BE --workers 2 \
	--response-timeout 1000 --max-body 104857600 --header-timeout 3000 --idle-timeout 2000
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" \
	-subj /CN=td.test -days 1 2>/dev/null
start_bg tls "$TOOL" --listen 127.0.0.1:8443 --upstream $BE --workers 2 \
	--tls "$TMP/cert.pem,$TMP/key.pem" --max-body 104857600
ok=1
for n in backend closer; do wait_log $n "backend ready" || ok=0; done
for n in main limited refused fallback closing memory tls nouring; do wait_log $n "ready:" || ok=0; done
t_eq "backends and engines ready" 1 $ok
((ok)) || t_done

# run SUITE ARGS...: the python checks, recorded here (not in a subshell)
run() { t_lines < <(nsx timeout 300 python3 "$CHECKS" "$@" backend=$BE); }

t_section "local responses, keep-alive, pool, pipelining, framing, hop-by-hop, fetch, 504"
run basic tool=127.0.0.1:8001
t_section "idle memory (5000 idle keep-alive connections, fresh engine)"
run idle_memory tool=127.0.0.1:8006 pid="$PID_memory" conns=5000
t_section "50 MiB bodies both ways"
run bodies tool=127.0.0.1:8001 pid="$PID_main"
t_section "the sendmsg fallback (TD_HS_NO_URING=1): the same basic and body checks"
uring_fds() { ls -l "/proc/$1/fd" 2>/dev/null | grep -c 'io_uring'; }
t_ge "batched sends: the default engine holds io_uring rings" 1 "$(uring_fds "$PID_main")"
t_eq "fallback engine: no io_uring ring" 0 "$(uring_fds "$PID_nouring")"
run basic tool=127.0.0.1:8019
run bodies tool=127.0.0.1:8019 pid="$PID_nouring"
t_section "strict parsing over raw sockets (max_body 1000)"
run strict limited=127.0.0.1:8002
t_section "slowloris and idle timeout (header_timeout 3 s, idle_timeout 2 s)"
run slowloris tool=127.0.0.1:8001 header_timeout=3
run idle tool=127.0.0.1:8001 idle_timeout=2
t_section "upstream failures and pool hygiene"
run upstream_fail refused=127.0.0.1:8003 fallback=127.0.0.1:8004 closer=127.0.0.1:8005
t_section "reload: td_hs_listen a new listener, td_hs_unlisten the old one, td_hs_set_limits"
run reload tool=127.0.0.1:8001 pid="$PID_main"
t_eq "engine log: 5 reloads" 5 "$(grep -c '^reloaded:' "$TMP/main.log")"
t_section "max_conns (10)"
run maxconns limited=127.0.0.1:8002 max_conns=10

t_section "TLS listener (td_tls): forward, local, 20 MiB download, chunked upload"
tcurl() { nsx curl -sk -m 20 --resolve td.test:8443:127.0.0.1 "$@"; }
t_eq "TLS: forwarded GET" "ok tls 200" "$(tcurl -w ' %{http_code}' https://td.test:8443/n/tls)"
t_eq "TLS: local response" "404" "$(tcurl -o /dev/null -w '%{http_code}' https://td.test:8443/__local)"
want=$(python3 -c "
import hashlib; P=bytes(range(256))*256; h=hashlib.sha256(); n=20<<20
for i in range(n//len(P)): h.update(P)
print(h.hexdigest())")
t_eq "TLS: 20 MiB download sha256" "$want" "$(tcurl https://td.test:8443/size/$((20 << 20)) | sha256sum | cut -c1-64)"
head -c 3000000 /dev/urandom >"$TMP/up.bin"
t_eq "TLS: 3 MB chunked upload sha256" "$(sha256sum <"$TMP/up.bin" | cut -c1-64) 3000000" \
	"$(tcurl -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/up.bin" https://td.test:8443/sha)"

t_section "drain on SIGTERM: a request in flight completes, every request got done()"
start_bg drain "$TOOL" --listen 127.0.0.1:8007 --upstream $BE --workers 2 --drain 5000
wait_log drain "ready:"
nsx curl -s -m 10 -o "$TMP/drain.body" -w '%{http_code}' http://127.0.0.1:8007/slow/1500 \
	>"$TMP/drain.code" &
cpid=$!
sleep 0.5
kill -TERM "$PID_drain"
wait "$cpid"
wait "$PID_drain"
rc=$?
t_eq "request in flight at SIGTERM answered" "200 slow" "$(cat "$TMP/drain.code") $(cat "$TMP/drain.body")"
t_eq "engine exits 0 after the drain (done() == request())" "0 1" \
	"$rc $(grep -c 'stopped: seen 1 done 1' "$TMP/drain.log")"
code=$(nsx curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:8007/ 2>/dev/null)
t_eq "listener closed after td_hs_free" "000" "$code"

t_section "engines stop cleanly (every request got exactly one done())"
for n in main limited refused fallback closing memory tls; do
	eval "p=\$PID_$n"
	kill -TERM "$p"
	wait "$p"
	rc=$?
	t_eq "td_http_tool ($n) exit status after SIGTERM" 0 "$rc"
	((rc == 0)) || tail -n 30 "$TMP/$n.log" | sed 's/^/  | /'
done

# Under load (not a benchmark: make bench-gateway compares td with nginx and haproxy): 5 s of
# wrk keep-alive traffic through the engine must give only 2xx answers and no socket errors.
if command -v wrk >/dev/null && command -v nginx >/dev/null; then
	t_section "wrk -t1 -c50 -d5s through td_http_tool (1 worker) to nginx: no errors"
	mkdir -p "$TMP/ngb"
	cat >"$TMP/ngb/nginx.conf" <<-EOF
	worker_processes 1;
	pid $TMP/ngb/nginx.pid;
	error_log $TMP/ngb/error.log warn;
	events { worker_connections 4096; }
	http {
		access_log off;
		keepalive_requests 100000000;
		server { listen 127.0.0.1:9100; location / { return 200 "hello world\n"; } }
	}
	EOF
	start_bg ngb nginx -p "$TMP/ngb" -c "$TMP/ngb/nginx.conf" -g 'daemon off; user root;'
	start_bg bench "$TOOL" --listen 127.0.0.1:9102 --upstream 127.0.0.1:9100 --workers 1 \
		--max-idle 64
	wait_log bench "ready:"
	sleep 0.5
	nsx wrk -t1 -c50 -d5s "http://127.0.0.1:9102/" >"$TMP/wrk.td" 2>&1
	td=$(awk '/^Requests\/sec:/ { printf "%d", $2 }' "$TMP/wrk.td")
	echo "  requests/s through td_http_tool: ${td:-none}"
	t_ge "wrk through td_http_tool: requests/s" 1000 "${td:-0}"
	t_eq "wrk through td_http_tool: no errors or non-2xx" "" \
		"$(grep -E 'Non-2xx|Socket errors' "$TMP/wrk.td" | tr '\n' ' ')"
fi

t_done
