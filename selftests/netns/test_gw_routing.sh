#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Gateway routing end to end (tdagent in a private netns, echo backends on its loopback): 404
# JSON without touching a backend, exact / prefix / host / method matching, strip_prefix, header
# edits, X-Forwarded-* and Forwarded (client values dropped unless the peer is trusted),
# X-Request-Id generated or passed through and echoed, hop-by-hop fields dropped both ways, load
# balancing (round robin exact, least_conn, random_two, hash on a header and on the client IP
# sticky), retries (connect failure, 502/503 for idempotent requests only), passive ejection and
# return, active health checks, access log and td_gw_* metrics. Usage: test_gw_routing.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if ! t_require_bins; then t_done; fi
source "$T_REPO/selftests/gw/gw_lib.sh"
gw_up

for i in 1 2 3 4 5 6 7 8; do gw_backend "b$i" "900$i"; done
gw_backend b10 9010
ALL='"127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"'
gw_config "gateway:
  listen: [ \"127.0.0.1:$GW\" ]
  workers: 2
  access_log: { path: $TMP/access.log, format: json }
  trusted_proxies: [ \"127.0.0.2/32\" ]
  upstreams:
    one: { backends: [ \"127.0.0.1:9001\" ] }
    canary: { backends: [ \"127.0.0.1:9002\" ] }
    rr: { lb: round_robin, backends: [ $ALL ] }
    lc: { lb: least_conn, backends: [ \"127.0.0.1:9001\", \"127.0.0.1:9002\" ] }
    r2: { lb: random_two, backends: [ $ALL ] }
    hh: { lb: hash, hash_key: \"header:X-User\", backends: [ $ALL ] }
    hip: { lb: hash, hash_key: client_ip, backends: [ $ALL ] }
    retry:
      backends: [ \"127.0.0.1:9009\", \"127.0.0.1:9004\" ]
      retries: 2
      outlier: { consecutive_failures: 0 }
    retry5:
      backends: [ \"127.0.0.1:9004\", \"127.0.0.1:9005\" ]
      retries: 2
      outlier: { consecutive_failures: 0 }
    ej:
      backends: [ \"127.0.0.1:9006\", \"127.0.0.1:9007\" ]
      retries: 0
      outlier: { consecutive_failures: 3, ejection: 3s }
    hc:
      backends: [ \"127.0.0.1:9008\", \"127.0.0.1:9010\" ]
      retries: 0
      health: { type: http, path: /healthz, interval: 1s }
  routes:
    - match: { path: /exact }
      upstream: one
    - match: { path_prefix: /users }
      upstream: one
      strip_prefix: /users
      request_headers: { add: { X-Env: prod }, remove: [ X-Debug ] }
      response_headers: { add: { X-Gw: td } }
    - match: { host: api.example, path_prefix: /users }
      upstream: one
      request_headers: { add: { X-Host-Route: api } }
    - match: { path_prefix: /users, headers: { X-Canary: \"yes\" } }
      upstream: canary
    - match: { path_prefix: /m, methods: [ GET, POST ] }
      upstream: one
    - { match: { path_prefix: /rr }, upstream: rr }
    - { match: { path_prefix: /lc }, upstream: lc }
    - { match: { path_prefix: /r2 }, upstream: r2 }
    - { match: { path_prefix: /hh }, upstream: hh }
    - { match: { path_prefix: /hip }, upstream: hip }
    - { match: { path_prefix: /retry }, upstream: retry }
    - { match: { path_prefix: /retry5 }, upstream: retry5 }
    - { match: { path_prefix: /eject }, upstream: ej }
    - { match: { path_prefix: /hc }, upstream: hc }"
gw_start
U=http://127.0.0.1:$GW

t_section "no route: 404 JSON, no backend touched"
n0=$(($(be_count b1) + $(be_count b2) + $(be_count b3)))
t_eq "GET /nothing" 404 "$(req nf "$U/nothing")"
t_eq "404 body is JSON" "dict" "$(jv "$TMP/nf.b" 'type(d).__name__')"
t_eq "404 Content-Type" "application/json" "$(hdr "$TMP/nf.h" content-type | cut -d';' -f1)"
t_eq "GET /usersx (not a segment prefix)" 404 "$(req nf2 "$U/usersx")"
t_eq "GET /exact/x (path is exact)" 404 "$(req nf3 "$U/exact/x")"
t_eq "DELETE /m (methods GET, POST)" 404 "$(req nf4 -X DELETE "$U/m")"
t_eq "backends untouched by unmatched requests" "$n0" "$(($(be_count b1) + $(be_count b2) + $(be_count b3)))"

t_section "matching and strip_prefix"
t_eq "GET /exact" 200 "$(req ex "$U/exact")"
t_eq "/exact reaches b1 unchanged" "b1 /exact" "$(jv "$TMP/ex.b" 'd["id"] + " " + d["target"]')"
t_eq "GET /users/42?q=/users" 200 "$(req st "$U/users/42?q=/users" -H 'X-Debug: 1')"
t_eq "strip_prefix keeps the query" "/42?q=/users" "$(jv "$TMP/st.b" 'd["target"]')"
t_eq "GET /users -> /" "/" "$(req st2 "$U/users" >/dev/null; jv "$TMP/st2.b" 'd["target"]')"
t_eq "request_headers.add X-Env" '["prod"]' "$(jv "$TMP/st.b" 'd["headers"].get("x-env")')"
t_eq "request_headers.remove X-Debug" "None" "$(jv "$TMP/st.b" 'd["headers"].get("x-debug")')"
t_eq "response_headers.add X-Gw" "td" "$(hdr "$TMP/st.h" x-gw)"
req hs -H 'Host: api.example' "$U/users/7" >/dev/null
t_eq "host api.example wins over the host-less route (no strip)" "/users/7 [\"api\"]" \
	"$(jv "$TMP/hs.b" 'd["target"] + " " + str(d["headers"].get("x-host-route")).replace(chr(39), chr(34))')"
req hs2 -H 'Host: API.EXAMPLE:8000' "$U/users/7" >/dev/null
t_eq "host match ignores case and port" "/users/7" "$(jv "$TMP/hs2.b" 'd["target"]')"
req cy -H 'X-Canary: yes' "$U/users/9" >/dev/null
t_eq "match.headers X-Canary: yes wins over the same prefix without it (b2, no strip)" "b2 /users/9" \
	"$(jv "$TMP/cy.b" 'd["id"] + " " + d["target"]')"
req cn -H 'X-Canary: no' "$U/users/9" >/dev/null
t_eq "another X-Canary value takes the plain /users route (b1, stripped)" "b1 /9" \
	"$(jv "$TMP/cn.b" 'd["id"] + " " + d["target"]')"
t_eq "POST /m" 200 "$(req mp -X POST --data-binary 'hello=1' "$U/m")"
t_eq "POST body reaches the backend" "hello=1" "$(jv "$TMP/mp.b" 'd["body"]')"

t_section "forwarded headers, request id, hop-by-hop"
req fw -H 'X-Forwarded-For: 1.2.3.4' -H 'X-Forwarded-Proto: https' -H 'Forwarded: for=1.2.3.4' \
	"$U/exact" >/dev/null
t_eq "untrusted peer: X-Forwarded-For is the peer only" '["127.0.0.1"]' "$(jv "$TMP/fw.b" 'd["headers"].get("x-forwarded-for")')"
t_eq "untrusted peer: X-Forwarded-Proto http" '["http"]' "$(jv "$TMP/fw.b" 'd["headers"].get("x-forwarded-proto")')"
fwd=$(jv "$TMP/fw.b" '"|".join(d["headers"].get("forwarded", []))')
t_true "Forwarded names the peer, not the client's value" "for=127.0.0.1, no 1.2.3.4" "$fwd" \
	eval '[[ $fwd == *for=*127.0.0.1* && $fwd != *1.2.3.4* ]]'
req fw2 --interface 127.0.0.2 -H 'X-Forwarded-For: 1.2.3.4' "$U/exact" >/dev/null
t_eq "trusted peer 127.0.0.2: X-Forwarded-For appended" '["1.2.3.4, 127.0.0.2"]' \
	"$(jv "$TMP/fw2.b" 'd["headers"].get("x-forwarded-for")')"
rid_up=$(jv "$TMP/fw.b" 'd["headers"].get("x-request-id", [""])[0]')
t_true "X-Request-Id generated" "non-empty" "$rid_up" test -n "$rid_up"
t_eq "X-Request-Id echoed in the response" "$rid_up" "$(hdr "$TMP/fw.h" x-request-id)"
t_true "a new id per request" "different from $rid_up" "$(jv "$TMP/fw2.b" 'd["headers"].get("x-request-id", [""])[0]')" \
	test "$(jv "$TMP/fw2.b" 'd["headers"].get("x-request-id", [""])[0]')" != "$rid_up"
req rid -H 'X-Request-Id: abc-123' "$U/exact" >/dev/null
t_eq "client X-Request-Id passed upstream" '["abc-123"]' "$(jv "$TMP/rid.b" 'd["headers"].get("x-request-id")')"
t_eq "client X-Request-Id echoed" "abc-123" "$(hdr "$TMP/rid.h" x-request-id)"
req hop -H 'Connection: keep-alive, X-Secret' -H 'X-Secret: 1' -H 'Keep-Alive: timeout=5' \
	-H 'TE: gzip' -H 'X-Kept: 1' "$U/exact?hop=1" >/dev/null
t_eq "hop-by-hop request fields not forwarded (x-secret, keep-alive, te)" "[] ['1']" \
	"$(jv "$TMP/hop.b" 'str([k for k in ("x-secret", "keep-alive", "te") if k in d["headers"]]) + " " + str(d["headers"].get("x-kept"))')"
t_eq "hop-by-hop response field named by the backend's Connection dropped" "" "$(hdr "$TMP/hop.h" x-hop-resp)"

t_section "load balancing"
gclient seq --port "$GW" --path /rr --count 30 >"$TMP/rr.json"
t_eq "round robin: 30 requests on one connection, 10 each" '{"b1": 10, "b2": 10, "b3": 10}' \
	"$(jv "$TMP/rr.json" 'dict(sorted(d["backends"].items()))')"
in_ns curl -s -m 10 -o "$TMP/lcslow.b" "$U/lc/slow?sleep_ms=2500" &
GW_PIDS+=($!)
slow_pid=$!
sleep 0.5
gclient seq --port "$GW" --path /lc --count 6 >"$TMP/lc.json"
wait "$slow_pid"
busy=$(jv "$TMP/lcslow.b" 'd["id"]')
t_eq "least_conn: 6 requests avoid the backend busy with a slow one ($busy)" "6 0" \
	"$(jv "$TMP/lc.json" 'str(d["ok"]) + " " + str(d["backends"].get("'"$busy"'", 0))')"
gclient seq --port "$GW" --path /r2 --count 60 >"$TMP/r2.json"
t_eq "random_two: 60 ok, every backend used" "60 3" "$(jv "$TMP/r2.json" 'str(d["ok"]) + " " + str(len(d["backends"]))')"
users_seen=""
sticky=0
for u in $(seq 0 11); do
	gclient seq --port "$GW" --path /hh --count 3 --new-conn -H "X-User: user$u" >"$TMP/hh.json"
	[[ $(jv "$TMP/hh.json" 'str(d["ok"]) + " " + str(len(d["backends"]))') == "3 1" ]] && sticky=$((sticky + 1))
	users_seen+=" $(jv "$TMP/hh.json" 'list(d["backends"])[0] if d["backends"] else "none"')"
done
t_eq "hash header:X-User: every user sticks to one backend (3 new connections each)" 12 "$sticky"
t_ge "hash header:X-User: users spread over backends" 2 "$(tr ' ' '\n' <<<"$users_seen" | sort -u | grep -c b)"
ips_seen=""
sticky=0
for i in $(seq 1 12); do
	gclient seq --port "$GW" --path /hip --count 3 --new-conn --bind "127.0.0.$i" >"$TMP/hip.json"
	[[ $(jv "$TMP/hip.json" 'str(d["ok"]) + " " + str(len(d["backends"]))') == "3 1" ]] && sticky=$((sticky + 1))
	ips_seen+=" $(jv "$TMP/hip.json" 'list(d["backends"])[0] if d["backends"] else "none"')"
done
t_eq "hash client_ip: every source address sticks to one backend" 12 "$sticky"
t_ge "hash client_ip: addresses spread over backends" 2 "$(tr ' ' '\n' <<<"$ips_seen" | sort -u | grep -c b)"

t_section "retries"
gclient seq --port "$GW" --path /retry/x --count 10 >"$TMP/re.json"
t_eq "connect failure on 127.0.0.1:9009 retried: 10 GETs all 200 from b4" '10 {"b4": 10}' \
	"$(jv "$TMP/re.json" 'str(d["ok"]) + " " + __import__("json").dumps(d["backends"])')"
c0=$(($(be_count b4) + $(be_count b5)))
t_eq "GET answered 503 by every backend" 503 "$(gcode "$U/retry5/x?status=503")"
c1=$(($(be_count b4) + $(be_count b5)))
t_eq "GET with retries: 2 -> 3 attempts" 3 $((c1 - c0))
t_eq "GET answered 502 by every backend" 502 "$(gcode "$U/retry5/x?status=502")"
c2=$(($(be_count b4) + $(be_count b5)))
t_eq "502 retried too -> 3 attempts" 3 $((c2 - c1))
t_eq "POST answered 503" 503 "$(gcode -X POST --data-binary x "$U/retry5/x?status=503")"
c3=$(($(be_count b4) + $(be_count b5)))
t_eq "POST is not retried -> 1 attempt" 1 $((c3 - c2))
t_eq "GET answered 500 (not retryable)" 500 "$(gcode "$U/retry5/x?status=500")"
t_eq "500 not retried -> 1 attempt" 1 $(($(be_count b4) + $(be_count b5) - c3))

t_section "passive ejection (consecutive_failures 3, ejection 3s)"
gw_backend_kill b7
gclient seq --port "$GW" --path /eject --count 10 >"$TMP/ej1.json"
t_ej=$(date +%s.%N)   # b7 was ejected during ej1
t_true "dead b7: at most 3 failures before ejection" "1..3 errors" "$(jv "$TMP/ej1.json" 'd["errors"]')" \
	test "$(jv "$TMP/ej1.json" 'd["errors"]')" -ge 1 -a "$(jv "$TMP/ej1.json" 'd["errors"]')" -le 3
gclient seq --port "$GW" --path /eject --count 10 >"$TMP/ej2.json"
t_eq "b7 ejected: next 10 requests ok from b6" '10 {"b6": 10}' \
	"$(jv "$TMP/ej2.json" 'str(d["ok"]) + " " + __import__("json").dumps(d["backends"])')"
gw_backend b7 9007
back=no
for i in $(seq 1 30); do
	gclient seq --port "$GW" --path /eject --count 4 >"$TMP/ej3.json"
	if [[ $(jv "$TMP/ej3.json" 'd["backends"].get("b7", 0)') -gt 0 ]]; then
		back=$(python3 -c "import time; print('%.1f' % (time.time() - $t_ej))")
		break
	fi
	sleep 0.2
done
t_true "b7 used again after the ejection time" "2.5..10 s after its ejection" "$back" \
	python3 -c 'import sys; sys.exit(not 2.5 <= float(sys.argv[1]) <= 10)' "${back/no/-1}"

t_section "active health checks (http /healthz, interval 1s)"
t_ge "b10 was probed" 1 "$(wc -l <"$BE/b10.hlog" 2>/dev/null || echo 0)"
touch "$BE/b10.down"
out=no
for i in $(seq 1 40); do
	gclient seq --port "$GW" --path /hc --count 6 >"$TMP/hc.json"
	[[ $(jv "$TMP/hc.json" 'str(d["ok"]) + " " + str(d["backends"].get("b10", 0))') == "6 0" ]] && { out="after ~$((i * 3 / 10))s"; break; }
	sleep 0.25
done
t_true "unhealthy b10 taken out" "6 requests all on b8 within 12 s" "$out" test "$out" != no
gclient seq --port "$GW" --path /hc --count 10 >"$TMP/hc2.json"
t_eq "while b10 is down: all on b8" '10 {"b8": 10}' \
	"$(jv "$TMP/hc2.json" 'str(d["ok"]) + " " + __import__("json").dumps(d["backends"])')"
rm -f "$BE/b10.down"
back=no
for i in $(seq 1 40); do
	gclient seq --port "$GW" --path /hc --count 4 >"$TMP/hc3.json"
	[[ $(jv "$TMP/hc3.json" 'd["backends"].get("b10", 0)') -gt 0 ]] && { back="after ~$((i * 3 / 10))s"; break; }
	sleep 0.25
done
t_true "healthy again: b10 back in rotation" "within 12 s" "$back" test "$back" != no

t_section "access log and metrics"
t_ge "access log lines (JSON)" 100 "$(python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    json.loads(line); n += 1
print(n)' "$TMP/access.log" 2>/dev/null || echo 0)"
scrape >"$TMP/m.prom"
t_ge "td_gw_* families on metrics_listen" 3 "$(grep -c '^# TYPE td_gw_' "$TMP/m.prom")"
t_ge "td_gw_ request counters sum >= requests made" 200 "$(awk '/^td_gw_[a-z_]*requests_total/ { s += $NF } END { printf "%d", s }' "$TMP/m.prom")"
t_eq "agent still running" yes "$(kill -0 "$T_AGENT_PID" 2>/dev/null && echo yes || echo no)"
t_done
