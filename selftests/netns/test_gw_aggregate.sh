#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Gateway aggregation end to end: all members ok -> exactly {"service1": <body1>, "service2":
# <body2>} (bodies as the services sent them); one member down -> 200, an error object in its
# place and X-Td-Aggregate: incomplete; failed=NAME; one member too slow -> its timeout is
# honoured (answer well before the member would reply); all down -> 502; a member answering
# non-JSON -> still valid JSON out; members fetched in parallel. Usage: test_gw_aggregate.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if ! t_require_bins; then t_done; fi
source "$T_REPO/selftests/gw/gw_lib.sh"
gw_up

gw_backend s1 9101
gw_backend s2 9102
gw_backend slow 9103 --delay-ms 3000
gw_backend txt 9104
gw_backend s5 9105 --delay-ms 400
gw_backend s6 9106 --delay-ms 400
A=http://127.0.0.1
gw_config "gateway:
  listen: [ \"127.0.0.1:$GW\" ]
  workers: 2
  upstreams:
    one: { backends: [ \"127.0.0.1:9101\" ] }
  routes:
    - match: { path: /api/data }
      aggregate:
        - { name: service1, url: \"$A:9101/data\" }
        - { name: service2, url: \"$A:9102/data\", timeout: 500ms }
    - match: { path: /agg/onefail }
      aggregate:
        - { name: service1, url: \"$A:9101/data\" }
        - { name: service2, url: \"$A:9109/data\" }
    - match: { path: /agg/timeout }
      aggregate:
        - { name: service1, url: \"$A:9101/data\" }
        - { name: service2, url: \"$A:9103/data\", timeout: 500ms }
    - match: { path: /agg/allfail }
      aggregate:
        - { name: service1, url: \"$A:9108/data\" }
        - { name: service2, url: \"$A:9109/data\" }
    - match: { path: /agg/text }
      aggregate:
        - { name: service1, url: \"$A:9101/data\" }
        - { name: service2, url: \"$A:9104/text\" }
    - match: { path: /agg/parallel }
      aggregate:
        - { name: a, url: \"$A:9105/data\", timeout: 2s }
        - { name: b, url: \"$A:9106/data\", timeout: 2s }
    - { match: { path_prefix: /plain }, upstream: one }"
gw_start
U=http://127.0.0.1:$GW

# secs CMD...: run CMD, print its wall time in seconds
secs() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null
	t1=$(date +%s.%N)
	python3 -c "print('%.2f' % ($t1 - $t0))"
}
in_range() { python3 -c 'import sys; sys.exit(not float(sys.argv[2]) <= float(sys.argv[1]) <= float(sys.argv[3]))' "$@"; }

t_section "all members ok"
gcurl -o "$TMP/d1" "$A:9101/data"
gcurl -o "$TMP/d2" "$A:9102/data"
t_eq "GET /api/data" 200 "$(req ok "$U/api/data")"
t_eq "Content-Type application/json" application/json "$(hdr "$TMP/ok.h" content-type | cut -d';' -f1)"
python3 - "$TMP/ok.b" "$TMP/d1" "$TMP/d2" >"$TMP/cmp.txt" 2>&1 <<'EOF'
import json, sys
raw = open(sys.argv[1]).read()
b1, b2 = (json.load(open(f)) for f in sys.argv[2:4])
try:
    d = json.loads(raw, object_pairs_hook=lambda kv: kv)
    keys = [k for k, _ in d]
    got = json.loads(raw)
except ValueError as e:
    keys, got = "not JSON: %s" % e, None
print("%s\t%s\t%s\t%s" % ("ok" if keys == ["service1", "service2"] else "FAIL",
      "members exactly service1, service2 in order", "['service1', 'service2']", keys))
ok = got == {"service1": b1, "service2": b2}
print("%s\t%s\t%s\t%s" % ("ok" if ok else "FAIL", "each member is the service's body",
      json.dumps({"service1": b1, "service2": b2}), raw[:200]))
EOF
t_lines <"$TMP/cmp.txt"
t_eq "complete: no X-Td-Aggregate header" "" "$(hdr "$TMP/ok.h" x-td-aggregate)"

t_section "one member down"
t_eq "GET /agg/onefail" 200 "$(req one "$U/agg/onefail")"
t_eq "X-Td-Aggregate" "incomplete; failed=service2" "$(hdr "$TMP/one.h" x-td-aggregate)"
t_eq "service1 intact" "$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$TMP/d1")" \
	"$(jv "$TMP/one.b" 'd["service1"]')"
t_eq "service2 holds an error object" "dict True" \
	"$(jv "$TMP/one.b" 'type(d["service2"]).__name__ + " " + str("error" in d["service2"])')"

t_section "one member times out (timeout 500ms, member answers after 3 s)"
t=$(secs req to "$U/agg/timeout")
t_eq "GET /agg/timeout" 200 "$(head -1 "$TMP/to.h" | cut -d' ' -f2)"
t_true "answered within 0.4..1.5 s" "0.4..1.5 s" "$t" in_range "$t" 0.4 1.5
t_eq "X-Td-Aggregate names the slow member" "incomplete; failed=service2" "$(hdr "$TMP/to.h" x-td-aggregate)"
t_eq "slow member holds an error object, the other its body" "dict True" \
	"$(jv "$TMP/to.b" 'type(d["service2"]).__name__ + " " + str(d["service1"]["from"] == "s1")')"

t_section "all members down"
t_eq "GET /agg/allfail" 502 "$(req all "$U/agg/allfail")"

t_section "member answers non-JSON"
t_eq "GET /agg/text" 200 "$(req tx "$U/agg/text")"
t_eq "the answer is valid JSON with both members" "True" "$(jv "$TMP/tx.b" 'sorted(d) == ["service1", "service2"]')"
v=$(jv "$TMP/tx.b" 'd["service2"] if isinstance(d["service2"], str) else ("error" if "error" in d["service2"] else "other")')
t_true "non-JSON member: as a JSON string, or an error object (flagged incomplete)" \
	"'plain txt' or error + header" "$v / $(hdr "$TMP/tx.h" x-td-aggregate)" \
	eval '[[ $v == "plain txt" || ( $v == error && $(hdr "$TMP/tx.h" x-td-aggregate) == *failed=service2* ) ]]'

t_section "members fetched in parallel (two members of 400 ms each)"
t=$(secs req par "$U/agg/parallel")
t_eq "GET /agg/parallel: both members" '"s5" "s6"' "$(jv "$TMP/par.b" '"\"%s\" \"%s\"" % (d["a"]["from"], d["b"]["from"])')"
t_true "took under 0.75 s (serial would be 0.8 s)" "0.35..0.75 s" "$t" in_range "$t" 0.35 0.75
t_eq "plain route still works" 200 "$(gcode "$U/plain")"
t_eq "agent still running" yes "$(kill -0 "$T_AGENT_PID" 2>/dev/null && echo yes || echo no)"
t_done
