#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Prometheus endpoint of tdagent and health state everywhere: scraped from the LB namespace's own
# loopback, its counters equal `tdctl --json stats`; td_backend_up, tdctl services/status and the
# td_backends flags follow a killed and restored backend (also with the agent down); reloads move
# td_config_generation and td_config_last_reload_success; a changed metrics_listen re-binds; the
# default listens on 127.0.0.1 only; a public address stops the start. Usage: test_ops_metrics.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if ! t_require_bins; then t_done; fi
source "$(dirname "$0")/ops_lib.sh"

t_section "scripts/check-metrics.sh: every family valid and documented"
out=$("$T_REPO/scripts/check-metrics.sh" "$T_BUILD" 2>&1)
rc=$?
t_true "check-metrics.sh passes" "rc 0" "rc $rc: $(echo "$out" | tail -1)" test "$rc" -eq 0

ops_up
MPORT=$((20000 + 0x$T_ID % 20000))   # the LB namespace's own loopback: no clash with the host
# metrics_cfg FILE WEIGHTS PORT: the ops config with a TCP health check on web and metrics on PORT
metrics_cfg() {
	ops_config "$1" "$2"
	sed -i "s|^  admin_socket: .*|&\n  metrics_listen: 127.0.0.1:$3|;
		s/^      proto: tcp$/      proto: tcp\n      health: { type: tcp, interval: 200ms, timeout: 100ms, rise: 2, fall: 2 }/" "$1"
}
metrics_cfg "$CFG" "1 1 1" "$MPORT"
if ! t_agent_start "$LB" "$CFG" "$BPFFS" "$TMP/agent.log"; then
	_t_record FAIL "tdagent ready" "ready:" "not ready"
	t_done
fi
t_eq "agent log: metrics endpoint" 1 "$(grep -c "metrics: serving http://127.0.0.1:$MPORT/metrics" "$TMP/agent.log")"

# scrape [PORT] [PATH]: GET inside the LB namespace; body on stdout
scrape() { ip netns exec "$LB" curl -sS -m 3 "http://127.0.0.1:${1:-$MPORT}${2:-/metrics}"; }
# http_code [PORT] PATH: status code ("000" when nothing answers)
http_code() { ip netns exec "$LB" curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$2"; }
# sample FILE NAME_WITH_LABELS: value of one sample ("none" when absent)
sample() { awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print "none" }' "$1"; }
# wait_sample NAME_WITH_LABELS WANT: seconds until the scraped value is WANT, or "timeout" (6 s)
wait_sample() {
	local t0 now
	t0=$(date +%s.%N)
	for _ in $(seq 1 60); do
		scrape >"$TMP/w.prom" 2>/dev/null
		if [[ $(sample "$TMP/w.prom" "$1") == "$2" ]]; then
			now=$(date +%s.%N)
			python3 -c "print('%.2f' % ($now - $t0))"
			return 0
		fi
		sleep 0.1
	done
	echo timeout
}

t_section "families, content type, 404"
scrape >"$TMP/m0.prom"
t_ge "scrape has samples" 20 "$(grep -vc '^#' "$TMP/m0.prom")"
missing=$(sed -n 's/^| *`\(td_[a-z_]*\)` *| *[a-z]* *|.*/\1/p' "$T_REPO/docs/metrics.md" | while read -r f; do
	grep -q "^# TYPE $f " "$TMP/m0.prom" || echo "$f"; done | tr '\n' ' ')
t_eq "every documented family present" "" "$missing"
ct=$(ip netns exec "$LB" curl -s -m 3 -o /dev/null -w '%{content_type}' "http://127.0.0.1:$MPORT/metrics")
t_eq "Content-Type" "text/plain; version=0.0.4; charset=utf-8" "$ct"
t_eq "GET / -> 404" 404 "$(http_code "$MPORT" /)"
t_eq "td_agent_info" 1 "$(grep -c '^td_agent_info{version="[^"]*"} 1$' "$TMP/m0.prom")"
t_eq "initial load counts as a successful attempt" 1 "$(sample "$TMP/m0.prom" td_config_last_reload_success)"

t_section "traffic through the VIP: counters equal tdctl --json stats"
ops_requests 60 "$TMP/req.json"
t_eq "requests through the VIP" 60 "$(t_json "$TMP/req.json" 'd["ok"]')"
sleep 0.2
ops_ctl --json stats >"$TMP/stats-a.json"
scrape >"$TMP/m1.prom"
ops_ctl --json stats >"$TMP/stats-b.json"
python3 - "$TMP/m1.prom" "$TMP/stats-a.json" "$TMP/stats-b.json" >"$TMP/cmp.txt" 2>&1 <<'EOF'
import json, re, sys
prom, a, b = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
vals = {}
for line in open(prom):
    m = re.match(r'^(\w+)(\{[^}]*\})? (\d+)$', line.strip())
    if m:
        vals[(m.group(1), m.group(2) or "")] = int(m.group(3))
def lab(**kw):
    return "{" + ",".join('%s="%s"' % kv for kv in kw.items()) + "}"
def check(desc, key, lo, hi, positive):
    v = vals.get(key)
    ok = v is not None and lo <= v <= hi and (v > 0 or not positive)
    print("%s\t%s\t%s\t%s" % ("ok" if ok else "FAIL", desc,
          "%d..%d%s" % (lo, hi, ", > 0" if positive else ""), v))
sa = {s["name"]: s for s in a["services"]}
for s in b["services"]:
    lbl = lab(service=s["name"], vip="10.200.0.100", port=80, proto="tcp")
    for f in ("packets", "bytes", "new_flows"):
        check("td_service_%s_total{web} = tdctl stats" % f, ("td_service_%s_total" % f, lbl),
              sa[s["name"]][f], s[f], True)
    ba = {(x["address"], x["port"]): x for x in sa[s["name"]]["backends"]}
    total = 0
    for x in s["backends"]:
        lbl = lab(service=s["name"], backend="%s:%d" % (x["address"], x["port"]))
        for f in ("packets", "bytes", "new_flows"):
            check("td_backend_%s_total{%s} = tdctl stats" % (f, x["address"]),
                  ("td_backend_%s_total" % f, lbl), ba[(x["address"], x["port"])][f], x[f], False)
        total += vals.get(("td_backend_packets_total", lbl), 0)
        n = vals.get(("td_backend_packets_total", lbl), 0)
        print("%s\t%s\t%s\t%s" % ("ok" if n > 0 else "FAIL",
              "backend %s got packets" % x["address"], "> 0", n))
    print("%s\t%s\t%s\t%s" % ("ok" if total == vals.get(("td_service_packets_total",
          lab(service="web", vip="10.200.0.100", port=80, proto="tcp"))) else "FAIL",
          "sum of backend packets = service packets", "equal", total))
EOF
t_lines <"$TMP/cmp.txt"   # not in a pipe: the counts must reach t_done
t_eq "metrics vs stats comparisons made" 16 "$(grep -c . "$TMP/cmp.txt")"
for n in 1 2 3; do
	t_eq "td_backend_up{10.10.1$n.2} = 1" 1 \
		"$(sample "$TMP/m1.prom" "td_backend_up{service=\"web\",backend=\"10.10.1$n.2:8080\"}")"
done

t_section "backend b1 killed and restored under the running agent: td_backend_up 0, then 1"
B1='td_backend_up{service="web",backend="10.10.11.2:8080"}'
# b1_restore: start b1's server again and wait until it listens
b1_restore() {
	topo_spawn "${TOPO_BACKENDS[0]}" "$TMP/srv-b1-$1.log" python3 "$T_NETNS_DIR/servers.py" \
		--name b1 --tcp 8080 --lifetime 200
	for _ in $(seq 1 50); do
		ip netns exec "${TOPO_BACKENDS[0]}" ss -Hltn 'sport = :8080' | grep -q . && break
		sleep 0.1
	done
}
kill "${TOPO_PIDS[0]}"
dt=$(wait_sample "$B1" 0)
t_true "td_backend_up 0 for the killed backend" "within 6 s" "$dt s" test "$dt" != timeout
ops_ctl --json services >"$TMP/svc-down.json"
t_eq "tdctl services (agent): health/weight of b1, b2" "down 0 up 1" \
	"$(t_json "$TMP/svc-down.json" "' '.join('%s %s' % (b['health'], b['weight']) for s in d['services'] for b in s['backends'] if b['address'] in ('10.10.11.2','10.10.12.2'))")"
t_eq "tdctl services (human): STATE down" 1 "$(ops_ctl services | grep -c '10.10.11.2:8080 .* down$')"
b1_restore 1
dt=$(wait_sample "$B1" 1)
t_true "td_backend_up 1 after restore (rise passes)" "within 6 s" "$dt s" test "$dt" != timeout
t_eq "tdctl services (human): STATE up" 1 "$(ops_ctl services | grep -c '10.10.11.2:8080 .* up$')"

t_section "b1 down and b3 drained: tdctl status, td_backends flags, then the agent stopped"
kill "$TOPO_LAST_PID"
dt=$(wait_sample "$B1" 0)
t_true "td_backend_up 0 again" "within 6 s" "$dt s" test "$dt" != timeout
ops_ctl backend drain web 10.10.13.2:8080 >/dev/null
t_eq "tdctl services (human): STATE drained" 1 "$(ops_ctl services | grep -c '10.10.13.2:8080 .* drained$')"
ops_ctl --json status >"$TMP/st-down.json"
t_eq "tdctl status: up/down/drained/unknown" "1 1 1 0" \
	"$(t_json "$TMP/st-down.json" "' '.join(str(d['backend_states'][k]) for k in ('up','down','drained','unknown'))")"
t_eq "tdctl status (human): counts" 1 "$(ops_ctl status | grep -c '^backends   3 (up 1, down 1, drained 1, unknown 0)')"
flags=$(ops_bpftool -j map dump pinned "$BPFFS/td_backends" | python3 -c 'import json,sys
d=json.load(sys.stdin); out=[]
for e in d:
    v=e.get("formatted",e)["value"]
    if v["flags"] & 1:
        a=v["addr"]["bytes"][:4]
        out.append("%s=%d" % (".".join(str(int(x, 0) if isinstance(x, str) else x) for x in a), v["flags"] & 0x1c))
print(" ".join(sorted(out)))')
t_eq "td_backends informational flags (DOWN 0x8, DRAINED 0x4)" "10.10.11.2=8 10.10.12.2=0 10.10.13.2=4" "$flags"
t_agent_stop TERM
ops_ctl --json services >"$TMP/svc-noagent.json"
t_eq "tdctl services without agent: health, drained" "down False|unknown False|unknown True" \
	"$(t_json "$TMP/svc-noagent.json" "'|'.join('%s %s' % (b['health'], b['drained']) for s in d['services'] for b in sorted(s['backends'], key=lambda b: b['address']))")"
t_eq "tdctl services without agent: agent false" False "$(t_json "$TMP/svc-noagent.json" 'd["agent"]')"
t_eq "tdctl status without agent: counts" 1 \
	"$(ops_ctl status | grep -c '^backends   3 (up 0, down 1, drained 1, unknown 1)')"
t_eq "no metrics endpoint without the agent" 000 "$(http_code "$MPORT" /metrics)"

t_section "agent restarted with b1 back: the file's view, every backend up"
b1_restore 2
if ! t_agent_start "$LB" "$CFG" "$BPFFS" "$TMP/agent2.log"; then
	_t_record FAIL "tdagent restart" "ready:" "not ready"
	t_done
fi
sleep 0.6   # first checks of the new agent (interval 200 ms)
ops_ctl --json services >"$TMP/svc-up.json"
t_eq "restart restored the file's view: nothing drained, all up" "up False|up False|up False" \
	"$(t_json "$TMP/svc-up.json" "'|'.join('%s %s' % (b['health'], b['drained']) for s in d['services'] for b in sorted(s['backends'], key=lambda b: b['address']))")"
t_eq "td_backend_up of b1 after the restart" 1 "$(scrape | awk -v k="$B1" '$1 == k { print $2 }')"

t_section "reloads: td_config_generation, td_config_last_reload_*"
scrape >"$TMP/r0.prom"
g0=$(sample "$TMP/r0.prom" td_config_generation)
t0=$(date +%s)
metrics_cfg "$CFG" "1 1 2" "$MPORT"
ops_ctl reload >/dev/null
scrape >"$TMP/r1.prom"
t_eq "valid reload: generation + 1" "$((g0 + 1))" "$(sample "$TMP/r1.prom" td_config_generation)"
t_eq "valid reload: last_reload_success 1" 1 "$(sample "$TMP/r1.prom" td_config_last_reload_success)"
t_ge "valid reload: last_reload_timestamp_seconds" "$t0" "$(sample "$TMP/r1.prom" td_config_last_reload_timestamp_seconds)"
cp "$CFG" "$TMP/good.yaml"
sed 's/vip: 10.200.0.100/vip: 10.200.0.300/' "$TMP/good.yaml" >"$TMP/bad.yaml"
cp "$TMP/bad.yaml" "$CFG"
ops_ctl reload >/dev/null 2>&1
rc=$?
scrape >"$TMP/r2.prom"
t_eq "invalid reload: tdctl rc 1" 1 "$rc"
t_eq "invalid reload: last_reload_success 0" 0 "$(sample "$TMP/r2.prom" td_config_last_reload_success)"
t_eq "invalid reload: generation unchanged" "$((g0 + 1))" "$(sample "$TMP/r2.prom" td_config_generation)"
cp "$TMP/good.yaml" "$CFG"

t_section "a changed node.metrics_listen re-binds on reload"
MPORT2=$((MPORT + 1))
metrics_cfg "$CFG" "1 1 2" "$MPORT2"
out=$(ops_ctl reload 2>&1)
t_true "reload with a new metrics_listen" "rc 0" "$out" test -n "$(echo "$out" | grep '^reloaded')"
t_eq "new port answers" 200 "$(http_code "$MPORT2" /metrics)"
t_eq "old port closed" 000 "$(http_code "$MPORT" /metrics)"
t_eq "after the re-bind: last_reload_success 1" 1 "$(scrape "$MPORT2" | awk '$1 == "td_config_last_reload_success" { print $2 }')"
sed -i "s|metrics_listen: 127.0.0.1:$MPORT2|metrics_listen: 10.10.1.1:$MPORT2|" "$CFG"
ops_ctl reload >/dev/null 2>"$TMP/pub.err"
rc=$?
t_true "reload to a public metrics address rejected" "rc 1, names node.metrics_listen" "rc $rc: $(tail -1 "$TMP/pub.err")" \
	test "$rc" -eq 1 -a -n "$(grep 'node.metrics_listen: cannot listen on 10.10.1.1' "$TMP/pub.err")"
t_eq "still served on the previous address" 200 "$(http_code "$MPORT2" /metrics)"
t_agent_stop TERM
t_eq "SIGTERM exit status" 0 "$T_AGENT_RC"

t_section "default: 127.0.0.1:9469 only; a public address stops the start"
ops_config "$CFG" "1 1 1"   # no metrics_listen key
if t_agent_start "$LB" "$CFG" "$BPFFS" "$TMP/agent3.log"; then
	ip netns exec "$LB" ss -Hltn >"$TMP/ss.txt"
	t_eq "listeners on :9469 in the LB namespace" "127.0.0.1:9469" \
		"$(awk '$4 ~ /:9469$/ { print $4 }' "$TMP/ss.txt" | tr '\n' ' ' | sed 's/ $//')"
	t_eq "default endpoint answers on 127.0.0.1" 200 "$(http_code 9469 /metrics)"
	code=$(ip netns exec "$CL" curl -s -m 2 -o /dev/null -w '%{http_code}' http://10.10.1.1:9469/metrics)
	t_eq "not reachable from the client namespace" 000 "$code"
	t_agent_stop TERM
else
	_t_record FAIL "tdagent with the default metrics_listen" "ready:" "not ready"
fi
sed -i "s|^  admin_socket: .*|&\n  metrics_listen: 10.10.1.1:9469|" "$CFG"
timeout 20 nsenter --net="/run/netns/$LB" "$TDAGENT" -c "$CFG" --bpffs "$BPFFS" 2>"$TMP/agent4.log"
rc=$?
t_true "public metrics_listen: start fails" "rc 1" "rc $rc" test "$rc" -eq 1
t_eq "one clear log line" 1 "$(grep -c 'metrics: refusing to listen on non-loopback address 10.10.1.1:9469' "$TMP/agent4.log")"
t_done
