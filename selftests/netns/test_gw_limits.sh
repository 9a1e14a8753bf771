#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Gateway limits end to end: rate limiting exact to the burst then 429 with Retry-After and no
# backend touched, buckets independent per key (client_ip from two source addresses, api_key,
# jwt_sub), refill after the period; connection limits: max_body_size (413), header_timeout
# (a slow head is cut), idle_timeout (an idle keep-alive connection is closed), and the agent
# survives all of it. Usage: test_gw_limits.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if ! t_require_bins; then t_done; fi
source "$T_REPO/selftests/gw/gw_lib.sh"
JWT=$T_REPO/selftests/gw/jwt.py
gw_up

K=$TMP/keys
mkdir -p "$K"
printf '%s' "limits-test-secret-$T_ID-0123456789abcdef0123" >"$K/hs.key"
KEYA=key-a-$T_ID-0123456789
KEYB=key-b-$T_ID-0123456789
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
gw_backend b1 9001
gw_config "gateway:
  listen: [ \"127.0.0.1:$GW\" ]
  workers: 2
  limits: { header_timeout: 2s, idle_timeout: 3s, max_body_size: 1024 }
  upstreams:
    one: { backends: [ \"127.0.0.1:9001\" ] }
  routes:
    - match: { path_prefix: /rl }
      upstream: one
      rate_limit: { rate: 1, burst: 5, period: 10s, key: client_ip }
    - match: { path_prefix: /rlk }
      upstream: one
      auth: { api_keys: { keys: [ { name: a, sha256: $(sha "$KEYA") }, { name: b, sha256: $(sha "$KEYB") } ] } }
      rate_limit: { rate: 1, burst: 3, period: 10s, key: api_key }
    - match: { path_prefix: /rlj }
      upstream: one
      auth: { jwt: { alg: HS256, secret_file: $K/hs.key } }
      rate_limit: { rate: 1, burst: 2, period: 10s, key: jwt_sub }
    - match: { path_prefix: /rlf }
      upstream: one
      rate_limit: { rate: 2, burst: 2, key: client_ip }
    - { match: { path_prefix: /open }, upstream: one }"
gw_start
U=http://127.0.0.1:$GW

# statuses FILE: "200x5 429x3" from a client.py seq result
statuses() { jv "$1" '" ".join("%sx%d" % kv for kv in sorted(d["statuses"].items()))'; }

t_section "rate_limit client_ip: burst 5, 1 per 10 s"
n0=$(be_count b1)
gclient seq --port "$GW" --path /rl --count 8 >"$TMP/rl1.json"
t_eq "8 requests: exactly 5 allowed, then 429" "200x5 429x3" "$(statuses "$TMP/rl1.json")"
t_eq "429s never reached the backend" 5 $(($(be_count b1) - n0))
t_eq "every 429 has Retry-After in 1..10" "3 True" \
	"$(jv "$TMP/rl1.json" 'str(len(d["retry_after"])) + " " + str(all(x.isdigit() and 1 <= int(x) <= 10 for x in d["retry_after"]))')"
t_eq "one more from the first address" 429 "$(req r429 "$U/rl")"
t_eq "429 body is JSON" dict "$(jv "$TMP/r429.b" 'type(d).__name__')"
gclient seq --port "$GW" --path /rl --count 7 --bind 127.0.0.3 >"$TMP/rl2.json"
t_eq "another client address has its own bucket" "200x5 429x2" "$(statuses "$TMP/rl2.json")"
gclient seq --port "$GW" --path /rl --count 1 >"$TMP/rl3.json"
t_eq "the first address is still limited" "429x1" "$(statuses "$TMP/rl3.json")"
gclient seq --port "$GW" --path /open --count 10 >"$TMP/op.json"
t_eq "a route without rate_limit is not limited" "200x10" "$(statuses "$TMP/op.json")"

t_section "rate_limit api_key and jwt_sub"
gclient seq --port "$GW" --path /rlk --count 5 -H "X-API-Key: $KEYA" >"$TMP/ka.json"
t_eq "api key a: burst 3" "200x3 429x2" "$(statuses "$TMP/ka.json")"
gclient seq --port "$GW" --path /rlk --count 4 -H "X-API-Key: $KEYB" >"$TMP/kb.json"
t_eq "api key b: its own bucket" "200x3 429x1" "$(statuses "$TMP/kb.json")"
TA=$(python3 "$JWT" make --alg HS256 --secret-file "$K/hs.key" --sub alice)
TB=$(python3 "$JWT" make --alg HS256 --secret-file "$K/hs.key" --sub bob)
TA2=$(python3 "$JWT" make --alg HS256 --secret-file "$K/hs.key" --sub alice --exp-in 7200)
gclient seq --port "$GW" --path /rlj --count 3 -H "Authorization: Bearer $TA" >"$TMP/ja.json"
t_eq "jwt sub alice: burst 2" "200x2 429x1" "$(statuses "$TMP/ja.json")"
gclient seq --port "$GW" --path /rlj --count 1 -H "Authorization: Bearer $TA2" >"$TMP/ja2.json"
t_eq "another token of alice shares her bucket" "429x1" "$(statuses "$TMP/ja2.json")"
gclient seq --port "$GW" --path /rlj --count 3 -H "Authorization: Bearer $TB" >"$TMP/jb.json"
t_eq "jwt sub bob: his own bucket" "200x2 429x1" "$(statuses "$TMP/jb.json")"
gclient seq --port "$GW" --path /rlj --count 1 >"$TMP/jn.json"
t_eq "no token: 401 before the limiter" "401x1" "$(statuses "$TMP/jn.json")"

t_section "refill: rate 2/s, burst 2"
gclient seq --port "$GW" --path /rlf --count 3 >"$TMP/f1.json"
t_eq "burst 2 then 429" "200x2 429x1" "$(statuses "$TMP/f1.json")"
t_eq "Retry-After 1" '["1"]' "$(jv "$TMP/f1.json" 'd["retry_after"]')"
sleep 1.1
gclient seq --port "$GW" --path /rlf --count 3 >"$TMP/f2.json"
t_eq "after 1.1 s: 2 tokens back, not more" "200x2 429x1" "$(statuses "$TMP/f2.json")"

t_section "limits: max_body_size 1024, header_timeout 2s, idle_timeout 3s"
n0=$(be_count b1)
head -c 2000 /dev/zero | tr '\0' a >"$TMP/big"
head -c 1000 /dev/zero | tr '\0' a >"$TMP/small"
t_eq "POST 2000 bytes" 413 "$(gcode -X POST --data-binary @"$TMP/big" "$U/open")"
t_eq "413 did not reach the backend" 0 $(($(be_count b1) - n0))
t_eq "POST 1000 bytes" 200 "$(gcode -X POST --data-binary @"$TMP/small" "$U/open")"
gclient raw --port "$GW" --data 'GET /open HTTP/1.1\r\nHost: x\r\n' --wait 8 >"$TMP/slow.json"
t_eq "incomplete head: connection closed by the gateway" True "$(jv "$TMP/slow.json" 'd["closed"]')"
t_true "closed after about header_timeout (2 s)" "1.5..5 s" "$(jv "$TMP/slow.json" 'd["seconds"]')" \
	python3 -c 'import sys; sys.exit(not 1.5 <= float(sys.argv[1]) <= 5)' "$(jv "$TMP/slow.json" 'd["seconds"]')"
t_true "answered 408 or nothing" "408 or empty" "$(jv "$TMP/slow.json" 'd["data"][:12]')" \
	python3 -c 'import sys; d=sys.argv[1]; sys.exit(not (d == "" or d.startswith("HTTP/1.1 408")))' "$(jv "$TMP/slow.json" 'd["data"][:12]')"
gclient raw --port "$GW" --data 'GET /open HTTP/1.1\r\nHost: x\r\n\r\n' --wait 8 >"$TMP/idle.json"
t_eq "keep-alive response, then closed when idle" "200 True" \
	"$(jv "$TMP/idle.json" 'd["data"][9:12] + " " + str(d["closed"])')"
t_true "idle close after about idle_timeout (3 s)" "2.5..6 s" "$(jv "$TMP/idle.json" 'd["seconds"]')" \
	python3 -c 'import sys; sys.exit(not 2.5 <= float(sys.argv[1]) <= 6)' "$(jv "$TMP/idle.json" 'd["seconds"]')"
t_eq "agent still running" yes "$(kill -0 "$T_AGENT_PID" 2>/dev/null && echo yes || echo no)"

t_section "metrics: td_gw_rate_limited_total = the 429s the clients saw"
# n429 FILE...: 429 answers in client.py seq results
n429() { for f in "$@"; do jv "$f" 'd["statuses"].get("429", 0)'; done | awk '{ s += $1 } END { print s + 0 }'; }
if grep -q '^  metrics_listen:' "$CFG"; then
	scrape >"$TMP/m.prom"
	# route names are the defaults: route0 /rl, route1 /rlk, route2 /rlj, route3 /rlf, route4 /open
	r0=$(($(n429 "$TMP/rl1.json" "$TMP/rl2.json" "$TMP/rl3.json") + $(head -n 1 "$TMP/r429.h" | grep -c ' 429')))
	exp="$r0 $(n429 "$TMP/ka.json" "$TMP/kb.json") $(n429 "$TMP/ja.json" "$TMP/ja2.json" "$TMP/jb.json") $(n429 "$TMP/f1.json" "$TMP/f2.json") 0"
	got=$(for r in 0 1 2 3 4; do
		awk -v k="td_gw_rate_limited_total{route=\"route$r\"}" '$1 == k { v = $2 } END { print (v == "" ? "absent" : v) }' "$TMP/m.prom"
	done | tr '\n' ' ')
	t_eq "td_gw_rate_limited_total route0..route4 = 429s per route" "$exp" "${got% }"
	t_eq "td_gw_rate_limited_total summed = all 429s (15)" 15 \
		"$(awk '/^td_gw_rate_limited_total\{/ { s += $2 } END { print s + 0 }' "$TMP/m.prom")"
	t_eq "td_gw_auth_failures_total{route=\"route2\"} = the one 401 (no token)" \
		"$(jv "$TMP/jn.json" 'd["statuses"].get("401", 0)')" \
		"$(awk '$1 == "td_gw_auth_failures_total{route=\"route2\"}" { print $2 }' "$TMP/m.prom")"
else
	echo "  (skipped: the config has no node.metrics_listen)"
fi
t_done
