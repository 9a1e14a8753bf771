#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Forward proxy end to end, the basics: python-requests with proxies= for http (absolute form)
# and https (CONNECT to a TLS origin, certificate checked end to end), http_proxy/https_proxy
# from the environment (requests and curl), curl -x, keep-alive on the client side, streamed
# (chunked) and sized POST bodies, HEAD, origin errors and a 2 MB body passed on, hop-by-hop
# headers (Proxy-Connection, Proxy-Authorization, Connection-listed) never at the origin, Via,
# a listener on a non-loopback address, one Squid-format access-log line per request.
# Topology and helpers: selftests/fp/fp_lib.sh. Usage: test_fp_basic.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if [[ ${TD_FP_PEER:-td} == td ]] && ! t_require_bins; then t_done; fi
source "$T_REPO/selftests/fp/fp_lib.sh"
fp_up

fp_config "forward_proxy:
  listen: [ \"127.0.0.1:$FPORT\", \"10.77.0.1:$FPORT\" ]
  allow_clients: [ 127.0.0.0/8, \"::1/128\", 10.77.0.0/24 ]
  deny_private_destinations: false    # the origins are on 10.77.0.2 (RFC 1918)
  access_log: { path: $ALOG, format: squid }"
fp_start

t_section "python-requests, http and https"
fpcheck basic --tag B
t_eq "origin (http) got one request for /b/B/get" "1" "$(ocount ext /b/B/get)"
t_eq "origin (http) connection came from the proxy's veth address" "10.77.0.1" \
	"$(olast ext /b/B/get 'r["peer"]')"
t_eq "TLS origin got the https requests (through the tunnel)" "2" "$(ocount tls /b/B/tls)"
t_eq "TLS origin saw no proxy header inside the tunnel" "absent" \
	"$(olast tls /b/B/tls 'h.get("via", "absent")')"
t_eq "origin got the three keep-alive requests" "3" "$(ocount ext /b/B/ka)"

t_section "curl -x, environment proxies, HTTP/1.0"
c=$(preq c1 http://www.origin.test/b/curl1)
t_eq "curl -x http: 200" "200" "$c"
t_eq "curl -x http: body from the origin" "/b/curl1" "$(t_json "$TMP/c1.b" 'd["path"]')"
c=$(in_ns curl -s -m 5 -x "$PX" --cacert "$CERTS/ca.pem" -o /dev/null -w '%{http_code} %{http_connect}' \
	https://api.example/b/curl2)
t_eq "curl -x https (CONNECT, origin certificate verified): CONNECT 200, then 200" "200 200" "$c"
c=$(in_ns env http_proxy="$PX" curl -s -m 5 -o /dev/null -w '%{http_code}' http://www.origin.test/b/env1)
t_eq "curl with http_proxy in the environment: 200" "200" "$c"
t_eq "... and the request went through the proxy (the origin saw it from 10.77.0.1 + Via)" \
	"10.77.0.1 true" "$(olast ext /b/env1 'r["peer"] + " " + str("via" in h).lower()')"
c=$(in_ns env https_proxy="$PX" curl -s -m 5 --cacert "$CERTS/ca.pem" -o /dev/null -w '%{http_code}' \
	https://api.example/b/env2)
t_eq "curl with https_proxy in the environment: 200" "200" "$c"
c=$(pcode -0 http://www.origin.test/b/http10)
t_eq "HTTP/1.0 client: 200" "200" "$c"
c=$(in_ns curl -s -m 5 -x "http://10.77.0.1:$FPORT" -o /dev/null -w '%{http_code}' http://www.origin.test/b/veth)
t_eq "proxy on its veth address (10.77.0.1, client inside allow_clients): 200" "200" "$c"
c=$(in_ns curl -s -m 5 -x "$PX" -o /dev/null -w '%{http_code}' -d 'a=1&b=2' http://www.origin.test/b/form)
t_eq "curl -d POST: 200" "200" "$c"
t_eq "... the origin got the 7 bytes" "7" "$(olast ext /b/form 'r["body_len"]')"

t_section "hop-by-hop headers, Via"
fpcheck hopbyhop --tag H
preq via http://www.origin.test/b/via >/dev/null
t_true "Via on the response to the client names td" "Via: ... td" "$(hdr "$TMP/via.h" Via)" \
	grep -qi 'td' <<<"$(hdr "$TMP/via.h" Via)"

t_section "access log (squid format)"
sleep 0.5
t_true "access log written" "$ALOG non-empty" "$(wc -l <"$ALOG" 2>/dev/null || echo missing) lines" \
	test -s "$ALOG"
# time.ms elapsed client code/status bytes method URL ident hierarchy/peer type
RE='^[0-9]+\.[0-9]{3} +[0-9]+ [0-9a-f.:]+ [A-Z_]+/[0-9]{3} [0-9]+ [A-Z]+ [^ ]+ [^ ]+ [A-Z_]+/[^ ]+ [^ ]+$'
bad=$(grep -cvE "$RE" "$ALOG" 2>/dev/null)
t_eq "every access-log line has the 10 squid fields" "0 bad" "${bad:-missing} bad"
t_true "GET line: client, TCP_MISS/200, absolute URL, HIER_DIRECT to the origin" \
	"127.0.0.1 TCP_MISS/200 ... GET http://www.origin.test/b/curl1 - HIER_DIRECT/10.77.0.2" \
	"$(grep -F ' http://www.origin.test/b/curl1 ' "$ALOG" 2>/dev/null | head -n 1)" \
	grep -qE '^[0-9.]+ +[0-9]+ 127\.0\.0\.1 TCP_[A-Z_]*MISS/200 [0-9]+ GET http://www\.origin\.test/b/curl1 - HIER_DIRECT/10\.77\.0\.2 ' "$ALOG"
t_true "CONNECT line: TCP_TUNNEL/200 CONNECT api.example:443" \
	"TCP_TUNNEL/200 ... CONNECT api.example:443" "$(grep -F ' CONNECT ' "$ALOG" 2>/dev/null | head -n 1)" \
	grep -qE ' TCP_TUNNEL/200 [0-9]+ CONNECT api\.example:443 ' "$ALOG"
t_true "POST line present" "POST http://www.origin.test/b/form" "$(grep -c ' POST ' "$ALOG") POST lines" \
	grep -qF ' POST http://www.origin.test/b/form ' "$ALOG"

t_section "metrics"
M=$(scrape)
t_ge "td_fp_ metric families on node.metrics_listen" 1 "$(grep -c '^# TYPE td_fp_' <<<"$M")"
t_ge "td_fp_ request samples sum to at least the requests sent" 20 \
	"$(msum "$M" '^td_fp_requests_total')"
t_ge "td_fp_ tunnel samples count the CONNECTs" 3 "$(msum "$M" '^td_fp_tunnels_total')"

t_agent_stop TERM
t_eq "proxy exits cleanly on SIGTERM" "0" "$T_AGENT_RC"
t_done
