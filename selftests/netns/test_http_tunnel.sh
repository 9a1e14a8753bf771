#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Forward-proxy features of the HTTP engine through build/bin/td_http_tool in a private netns:
# CONNECT tunnels (1 MiB both ways, pipelined bytes, TLS ClientHello sent early, half-close both
# ways, idle timeout, 502 refused, 504 connect timeout), CONNECT inside a TLS listener, a RAW
# listener, the response hooks (body seen exactly, CL and chunked), td_hs_respond_ex,
# absolute-form forwarding (Host from the URI, Proxy-* never forwarded), tunnel counters.
# Usage: test_http_tunnel.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"

source "$T_REPO/selftests/http/http_lib.sh"
http_setup tun
CHECKS=$HTTP_DIR/tunnel_checks.py

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" \
	-subj /CN=td.test -days 1 2>/dev/null
start_bg backend python3 "$HTTP_DIR/backend.py" 9001
start_bg echo python3 -u "$CHECKS" echo 9201
start_bg banner python3 -u "$CHECKS" banner 9202
start_bg stall python3 -u "$CHECKS" stall 9204
start_bg tlsecho python3 -u "$CHECKS" tlsecho 9203 "$TMP/cert.pem" "$TMP/key.pem"
start_bg proxy "$TOOL" --listen 127.0.0.1:8101 --upstream 127.0.0.1:9201 --raw 127.0.0.1:8102 \
	--connect --tee --tunnel-idle 1500 --connect-timeout 500 --workers 2
start_bg tlsproxy "$TOOL" --listen 127.0.0.1:8143 --upstream 127.0.0.1:9001 --connect \
	--tls "$TMP/cert.pem,$TMP/key.pem" --workers 1
start_bg gw "$TOOL" --listen 127.0.0.1:8103 --upstream 127.0.0.1:9001 --workers 1
ok=1
wait_log backend "backend ready" || ok=0
for n in echo banner tlsecho stall; do wait_log $n "server ready" || ok=0; done
for n in proxy tlsproxy gw; do wait_log $n "ready:" || ok=0; done
t_eq "servers and engines ready" 1 $ok
((ok)) || t_done

run() { t_lines < <(nsx timeout 120 python3 "$CHECKS" "$@"); }

t_section "CONNECT tunnels: 1 MiB, pipelined bytes, half-close, idle timeout, 502, 504"
run connect tool=127.0.0.1:8101 echo=127.0.0.1:9201 banner=127.0.0.1:9202 idle=1.5 \
	blackhole=127.0.0.1:9204 expect="$TMP/banner.expect"
sleep 0.3
t_eq "half-close: the server got every byte sent after its FIN" \
	"$(cat "$TMP/banner.expect" 2>/dev/null)" "$(grep '^banner got' "$TMP/banner.log" | tail -n 1)"
t_section "TLS through CONNECT (ClientHello pipelined) and CONNECT inside a TLS listener"
run tls tool=127.0.0.1:8101 tlsecho=127.0.0.1:9203
run tls_listener tool=127.0.0.1:8143 echo=127.0.0.1:9201
t_section "RAW listener (ops->raw, td_hs_tunnel to --upstream)"
run raw raw=127.0.0.1:8102
t_eq "without --connect a CONNECT is forwarded as before (the backend's 501 relayed)" "501" \
	"$(nsx curl -s -m 5 -o /dev/null -w '%{http_connect}' -p -x http://127.0.0.1:8103 \
	http://127.0.0.1:9001/ 2>/dev/null)"

t_section "response hooks (--tee): the decoded body, CL and chunked"
for p in size/1000000 chunked/300001 size/0; do
	body=$(nsx curl -s -m 10 -x http://127.0.0.1:8101 "http://127.0.0.1:9001/$p" | sha256sum)
	body=${body:0:64}
	len=${p#*/}
	sleep 0.2
	t_eq "tee of /$p: bytes and sha256 as the client got them" \
		"bytes $len sha256 $body complete 1" \
		"$(grep '^tee:' "$TMP/proxy.log" | tail -n 1 | cut -d' ' -f4-)"
done
nsx curl -s -m 10 -o /dev/null -X HEAD -x http://127.0.0.1:8101 http://127.0.0.1:9001/size/5000
sleep 0.2
t_eq "tee of a HEAD response: no body bytes, complete" "bytes 0" \
	"$(grep '^tee:' "$TMP/proxy.log" | tail -n 1 | cut -d' ' -f4-5)"

t_section "td_hs_respond_ex, listener tags, absolute-form"
nsx curl -s -m 5 -D "$TMP/rx.h" -o "$TMP/rx.b" http://127.0.0.1:8101/__respond_ex
hval() { grep -i "^$1:" "$2" | tr -d '\r' | head -n 1 | cut -d' ' -f2-; }	# hval NAME FILE
t_eq "respond_ex: status line with its reason" "HTTP/1.1 203 Custom Reason" \
	"$(head -n 1 "$TMP/rx.h" | tr -d '\r')"
t_eq "respond_ex: the given Date, exactly one" "Date: Mon, 01 Jan 2001 00:00:00 GMT|1" \
	"$(grep -i '^date:' "$TMP/rx.h" | tr -d '\r' | head -n 1)|$(grep -ci '^date:' "$TMP/rx.h")"
t_eq "respond_ex: body, Content-Length, ETag" "respond_ex|11|\"v1\"" \
	"$(tr -d '\n' <"$TMP/rx.b")|$(hval content-length "$TMP/rx.h")|$(hval etag "$TMP/rx.h")"
nsx curl -s -m 5 -D "$TMP/rxc.h" -o /dev/null 'http://127.0.0.1:8101/__respond_ex?close'
t_eq "respond_ex close_after: Connection: close" "close" "$(hval connection "$TMP/rxc.h")"
t_eq "listener tags: HTTP listener 1" "tag 1" "$(nsx curl -s -m 5 http://127.0.0.1:8101/__tag)"
hdrs=$(nsx curl -s -m 5 -x http://127.0.0.1:8101 -U user:secret -H 'X-Keep: 1' \
	http://127.0.0.1:9001/headers)
t_eq "absolute-form: origin-form upstream, Host from the URI, Proxy-* dropped" \
	"Host=127.0.0.1:9001 X-Keep=1 proxy=0" \
	"$(python3 -c "
import json,sys
h=dict((k.lower(),v) for k,v in json.loads(sys.argv[1]))
proxy = sum(k.startswith('proxy-') for k in h)
print('Host=%s X-Keep=%s proxy=%d' % (h.get('host'), h.get('x-keep'), proxy))" "$hdrs" 2>&1)"
req='GET http://127.0.0.1:9001/headers HTTP/1.1\r\nHost: wrong.example\r\n'
req+='Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\n'
req+='Connection: close\r\n\r\n'
hdrs=$(printf "$req" |
	nsx timeout 5 python3 -c "
import socket,sys
s=socket.create_connection(('127.0.0.1',8101)); s.sendall(sys.stdin.buffer.read())
b=b''
while True:
    d=s.recv(65536)
    if not d: break
    b+=d
print(b.partition(b'\r\n\r\n')[2].decode())")
t_eq "absolute-form with a different Host: Host replaced, Proxy-* dropped" \
	"127.0.0.1:9001 0" "$(python3 -c "
import json,sys
h=[(k.lower(),v) for k,v in json.loads(sys.argv[1])]
hosts = [v for k, v in h if k == 'host']
print(hosts[0] if len(hosts) == 1 else hosts, sum(k.startswith('proxy-') for k, v in h))" "$hdrs" 2>&1)"

t_section "counters and clean stop"
nsx curl -s -m 5 http://127.0.0.1:8101/__stats >"$TMP/stats.json"
t_ge "tunnels established (td_hs_stats.tunnels)" 6 "$(t_json "$TMP/stats.json" 'd["tunnels"]')"
t_eq "no tunnel left open" 0 "$(t_json "$TMP/stats.json" 'd["tunnels_open"]')"
t_ge "ops->raw calls (one -EAGAIN at least)" 3 "$(t_json "$TMP/stats.json" 'd["raw_calls"]')"
for n in proxy tlsproxy gw; do
	eval "p=\$PID_$n"
	kill -TERM "$p"
	wait "$p"
	rc=$?
	t_eq "td_http_tool ($n) exits 0 after SIGTERM (every request got one done())" 0 "$rc"
	((rc == 0)) || tail -n 20 "$TMP/$n.log" | sed 's/^/  | /'
done
t_eq "no engine error logged" "" "$(grep -h 'done() without\|response_end() missing' "$TMP"/*.log)"

t_done
