#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Gateway reload under load: keep-alive load (6 connections, one of them slow requests) while 20
# reloads (tdctl reload and SIGHUP, alternating) switch a route between two upstreams -> zero
# failed requests, no connection closed, one client socket sees both upstreams; invalid configs
# (unknown upstream, missing key file; tdctl and SIGHUP) are rejected with FILE:LINE and change
# nothing; routes added and removed; a listener removed by a reload keeps its established
# connections. Usage: test_gw_reload.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if ! t_require_bins; then t_done; fi
source "$T_REPO/selftests/gw/gw_lib.sh"
gw_up

gw_backend b1 9001
gw_backend b2 9002
# cfg UPSTREAM_OF_/r [EXTRA_ROUTES] [LISTEN]: the test's config
cfg() {
	gw_config "gateway:
  listen: [ ${3:-\"127.0.0.1:$GW\"} ]
  workers: 2
  upstreams:
    up1: { backends: [ \"127.0.0.1:9001\" ] }
    up2: { backends: [ \"127.0.0.1:9002\" ] }
  routes:
    - { match: { path_prefix: /r }, upstream: $1 }
    - { match: { path_prefix: /slow }, upstream: up1 }
${2:-}"
}
cfg up1
gw_start
U=http://127.0.0.1:$GW
t_eq "/r on up1 before the reloads" b1 "$(req r0 "$U/r" >/dev/null; jv "$TMP/r0.b" 'd["id"]')"

t_section "20 reloads under keep-alive load"
gclient load --port "$GW" --path /r --threads 6 --duration 14 --slow-path '/slow?sleep_ms=300' \
	>"$TMP/load.json" 2>&1 &
GW_PIDS+=($!)
load_pid=$!
gclient seq --port "$GW" --path /r --count 45 --interval 0.3 >"$TMP/one.json" 2>&1 &
GW_PIDS+=($!)
one_pid=$!
sleep 1
ok_reloads=0
for i in $(seq 1 20); do
	if ((i % 2)); then cfg up2; else cfg up1; fi
	if ((i % 4 < 2)); then
		gw_reload >"$TMP/rl-$i.out" && ok_reloads=$((ok_reloads + 1))
	else
		kill -HUP "$T_AGENT_PID" && ok_reloads=$((ok_reloads + 1))
	fi
	sleep 0.5
done
wait "$load_pid"
wait "$one_pid"
t_eq "20 reloads issued and accepted" 20 "$ok_reloads"
t_ge "load: requests made" 200 "$(jv "$TMP/load.json" 'd["requests"]')"
t_eq "load: zero failed requests" "0 ''" "$(jv "$TMP/load.json" 'str(d["errors"]) + " " + repr(d["first_error"])')"
t_eq "load: no connection closed (6 sockets, 0 reconnects)" "6 0" "$(jv "$TMP/load.json" 'str(d["conns"]) + " " + str(d["reconnects"])')"
t_eq "load: both upstreams served /r" "True" "$(jv "$TMP/load.json" 'd["backends"].get("b1", 0) > 0 and d["backends"].get("b2", 0) > 0')"
t_eq "one client socket: 45 ok over all reloads" "45 0 1" "$(jv "$TMP/one.json" 'str(d["ok"]) + " " + str(d["errors"]) + " " + str(d["conns"])')"
t_eq "the same socket saw the route switch" '["b1", "b2"]' "$(jv "$TMP/one.json" 'sorted(d["backends"])')"
t_eq "after the last reload /r is on up1 again" '{"b1": 10}' \
	"$(gclient seq --port "$GW" --path /r --count 10 >"$TMP/after.json"; jv "$TMP/after.json" 'd["backends"]')"
t_eq "agent log: no reload failed" 0 "$(grep -ci 'reload.*fail\|reload.*error' "$LOG")"

t_section "invalid reloads change nothing"
cp "$CFG" "$TMP/good.yaml"
cfg nope
line=$(grep -n 'upstream: nope' "$CFG" | cut -d: -f1)
out=$(gw_reload)
rc=$?
t_true "tdctl reload of an unknown upstream fails" "rc != 0" "rc $rc" test "$rc" -ne 0
t_true "error names FILE:LINE" "td.yaml:$line" "$(head -c 200 <<<"$out" | tr "\n" " ")" eval '[[ $out == *td.yaml:$line* ]]'
gclient seq --port "$GW" --path /r --count 6 >"$TMP/inv1.json"
t_eq "still routed to up1" '6 {"b1": 6}' "$(jv "$TMP/inv1.json" 'str(d["ok"]) + " " + __import__("json").dumps(d["backends"])')"
cfg up2 "    - match: { path_prefix: /sec }
      upstream: up2
      auth: { jwt: { alg: HS256, secret_file: $TMP/missing.key } }"
out=$(gw_reload)
rc=$?
t_true "tdctl reload with a missing key file fails" "rc != 0" "rc $rc: $(head -c 150 <<<"$out" | tr "\n" " ")" test "$rc" -ne 0
t_eq "/r still on up1 (the valid part was not applied)" b1 "$(req i2 "$U/r" >/dev/null; jv "$TMP/i2.b" 'd["id"]')"
t_eq "/sec not added" 404 "$(gcode "$U/sec")"
cfg nope
kill -HUP "$T_AGENT_PID"
sleep 1
t_eq "SIGHUP with an invalid config: agent alive" yes "$(kill -0 "$T_AGENT_PID" 2>/dev/null && echo yes || echo no)"
t_eq "SIGHUP with an invalid config: still up1" b1 "$(req i3 "$U/r" >/dev/null; jv "$TMP/i3.b" 'd["id"]')"

t_section "routes added and removed"
cfg up1 "    - { match: { path: /new }, upstream: up2 }"
out=$(gw_reload)
t_eq "reload adding /new" "rc 0" "rc $?"
t_eq "/new served by up2" b2 "$(req n1 "$U/new" >/dev/null; jv "$TMP/n1.b" 'd["id"]')"
cfg up1
gw_reload >/dev/null
t_eq "/new removed -> 404" 404 "$(gcode "$U/new")"

t_section "a listener removed by a reload keeps its established connections"
gclient seq --port "$GW" --path /r --count 12 --interval 0.4 >"$TMP/keep.json" 2>&1 &
GW_PIDS+=($!)
keep_pid=$!
sleep 1
cfg up1 "" "\"127.0.0.1:8001\""
out=$(gw_reload)
t_eq "reload moving the listener to :8001" 0 "$?"
gw_wait_port 8001 30
t_eq "new listener :8001 serves" 200 "$(gcode "http://127.0.0.1:8001/r")"
sleep 0.5
t_eq "new connections to the removed :$GW refused" 000 "$(gcode "$U/r")"
wait "$keep_pid"
t_eq "the connection opened on :$GW before kept working" "12 0 1" \
	"$(jv "$TMP/keep.json" 'str(d["ok"]) + " " + str(d["errors"]) + " " + str(d["conns"])')"
t_eq "agent still running" yes "$(kill -0 "$T_AGENT_PID" 2>/dev/null && echo yes || echo no)"
t_done
