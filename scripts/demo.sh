#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# make demo: td balancing real traffic in a throw-away netns topology (prefix tddemo), with the
# example config docs/examples/td.yaml: the L4 load balancer, the agent's operations and the
# service mesh (workloads in cgroups <cgroup2 mount>/tddemo/*), the API gateway and the forward
# proxy, then everything is removed again. Usage: demo.sh BUILD
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
export TD_BUILD=$BUILD
TDAGENT=$BUILD/bin/tdagent
TDCTL=$BUILD/bin/tdctl
BPFFS=/sys/fs/bpf/td           # the example's node.bpffs (the default)
P=tddemo
# shellcheck source=topo.sh
source "$REPO/scripts/topo.sh"

die() { echo "demo: $*" >&2; exit 1; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[[ $EUID -eq 0 ]] || die "needs root (network namespaces, XDP, bpffs)"
for b in "$TDAGENT" "$TDCTL" "$BUILD/bpf/xdp_pass.bpf.o"; do
	[[ -e $b ]] || die "missing $b: run make all"
done
topo_bpffs_mount
if [[ -d $BPFFS ]] && [[ -n $(find "$BPFFS" -mindepth 1 -maxdepth 1 2>/dev/null | head -1) ]]; then
	die "$BPFFS already holds pins (a running td?); refusing to touch it"
fi
for ns in cl lb b1 b2 b3; do
	[[ -e /run/netns/$P-$ns ]] && die "namespace $P-$ns exists (a demo running, or left over: ip netns del $P-$ns)"
done
# The mesh: workloads live in <cgroup2 mount>/tddemo/{frontend,orders,intruder} (the example's
# mesh.cgroup_root is the default, the cgroup2 mount).
CG_MNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CG_MNT ]] || die "no cgroup2 filesystem mounted (the mesh needs one)"
CGD=$CG_MNT/$P
[[ -e $CGD ]] && die "cgroup $CGD exists (a demo running, or left over: move its processes out, rmdir it)"

TMP=$(mktemp -d /tmp/tddemo.XXXXXX)
TOPO_LOGDIR=$TMP
AGENT_PID=""
CREATED_BPFFS=0
[[ -d $BPFFS ]] || CREATED_BPFFS=1
CREATED_CGD=0
MESH_PIDS=()
cleanup() {
	trap - EXIT INT TERM
	step "cleanup"
	if [[ -n $AGENT_PID ]]; then
		kill -TERM "$AGENT_PID" 2>/dev/null
		wait "$AGENT_PID" 2>/dev/null
	fi
	local d pid
	if ((CREATED_CGD)) && [[ -d $CGD ]]; then
		# every process in the demo's cgroups is one the demo started
		for d in $(find "$CGD" -mindepth 1 -type d | sort -r) "$CGD"; do
			for pid in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
		done
		for pid in "${MESH_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	fi
	# the mesh programs are attached to the cgroup2 mount: detach them first (--cleanup does too)
	[[ -e $BPFFS/td_m_cnt && -x $BUILD/bin/td_mesh_ctl ]] &&
		"$BUILD/bin/td_mesh_ctl" detach "$BPFFS" "$CG_MNT" >/dev/null 2>&1
	if [[ -e /run/netns/$P-lb ]]; then
		nsenter --net="/run/netns/$P-lb" "$TDAGENT" --cleanup --bpffs "$BPFFS" >/dev/null 2>&1 || true
	fi
	# We checked at start that BPFFS held nothing: whatever is left is ours.
	if [[ -d $BPFFS ]]; then
		find "$BPFFS" -mindepth 1 -delete 2>/dev/null || true
		((CREATED_BPFFS)) && rmdir "$BPFFS" 2>/dev/null
	fi
	topo_down
	if ((CREATED_CGD)) && [[ -d $CGD ]]; then
		for d in $(find "$CGD" -mindepth 1 -type d | sort -r) "$CGD"; do
			for _ in $(seq 1 50); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
		done
	fi
	rm -rf "$TMP"
	echo "removed namespaces $P-*, pins under $BPFFS, cgroups $CGD, agent and servers"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0=$(date +%s)
step "topology (namespaces $P-cl, $P-lb, $P-b1..b3)"
topo_up "$P" || die "topology failed"
cat <<'EOF'
  client c0 10.10.1.2 fd00:1::2 ── lb-c 10.10.1.1 fd00:1::1 [LB: tdagent, XDP+TC]
                                    lb-bN 10.10.1N.1 fd00:1N::1 ── b0 10.10.1N.2 fd00:1N::2 [backend bN]
EOF
topo_start_servers 110 || die "backend servers did not start"
echo "  backends b1 b2 b3 serve TCP :8080 (HTTP too) and UDP :5353, answering their name"
# the gateway's upstreams: a JSON echo server on :9000 of b1 and b2 (selftests/gw/backend.py)
mkdir -p "$TMP/gwstate"
for n in 1 2; do
	topo_spawn "${TOPO_BACKENDS[$((n - 1))]}" "$TMP/$P-gw-b$n.log" python3 \
		"$REPO/selftests/gw/backend.py" --id "b$n" --listen "10.10.1$n.2:9000" \
		--dir "$TMP/gwstate" --lifetime 110
done
echo "  b1 and b2 also run a JSON echo server on :9000 (the gateway's upstreams)"
# the forward proxy's origin: an HTTP server on b3:80 with cache headers chosen per request
topo_spawn "${TOPO_BACKENDS[2]}" "$TMP/$P-origin.log" python3 "$REPO/selftests/fp/origin.py" \
	--listen 10.10.13.2:80 --log "$TMP/origin.jsonl" --lifetime 110
echo "  b3 also runs an HTTP origin on :80 (the forward proxy's destination)"

step "mesh workloads: cgroups $CGD/{frontend,orders,intruder} (before the agent: it checks them)"
mkdir "$CGD" && CREATED_CGD=1 && mkdir "$CGD/frontend" "$CGD/orders" "$CGD/intruder" ||
	die "cannot create the cgroups under $CGD"
# A small workload: non-blocking servers that answer their name and echo (the contract of
# sockmap: true in docs/mesh.md), and a client that reports the backend, getpeername() and
# whether its payload came back intact.
cat >"$TMP/meshdemo.py" <<'PY'
import errno, json, selectors, socket, sys, time
def serve(specs):
    sel = selectors.DefaultSelector()
    for spec in specs:
        port, name = spec.split(",")
        ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", int(port))); ls.listen(128); ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ, ("listen", name.encode() + b"\n"))
    print("ready", flush=True)
    end = time.time() + 110
    while time.time() < end:
        for key, _ in sel.select(1):
            kind, data = key.data
            if kind == "listen":
                try:
                    c, _ = key.fileobj.accept()
                except BlockingIOError:
                    continue
                try:
                    c.sendall(data)  # the greeting: small, fits the send buffer
                    c.setblocking(False)
                except OSError:      # the agent's health checks connect and reset
                    c.close(); continue
                sel.register(c, selectors.EVENT_READ, ("conn", None))
                continue
            c = key.fileobj
            try:
                out = bytearray(c.recv(65536))
                if not out:
                    raise ConnectionResetError
            except BlockingIOError:
                continue
            except OSError:
                sel.unregister(c); c.close(); continue
            while out:              # echo it all back (a short wait when the buffer is full)
                try:
                    n = c.send(out); del out[:n]
                except BlockingIOError:
                    time.sleep(0.001)
                except OSError:
                    break
def client(host, port, n, size):
    for i in range(n):
        s = socket.socket(); s.settimeout(3)
        try:
            s.connect((host, port))
        except OSError as e:
            print(json.dumps({"errno": errno.errorcode.get(e.errno, str(e))})); continue
        peer = "%s:%d" % s.getpeername()
        f = s.makefile("rb")
        name = f.readline().strip().decode()
        pay = bytes((i * 7 + k) % 251 for k in range(size))
        s.sendall(pay)
        got = f.read(size)
        print(json.dumps({"backend": name, "peer": peer, "intact": got == pay, "bytes": size}),
              flush=True)
        f.close(); s.close()
if sys.argv[1] == "serve":
    serve(sys.argv[2:])
else:
    client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
PY
# in_cg FOLDER CMD...: CMD in cgroup $CGD/FOLDER inside the LB namespace
in_cg() {
	local cg=$1
	shift
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec nsenter --net="/run/netns/$0" "$@"' \
		"$P-lb" "$CGD/$cg" "$@"
}
in_cg orders python3 "$TMP/meshdemo.py" serve 9001,orders-1 9002,orders-2 >"$TMP/mesh-orders.log" 2>&1 &
MESH_PIDS+=($!)
in_cg frontend python3 "$TMP/meshdemo.py" serve 9101,frontend >"$TMP/mesh-frontend.log" 2>&1 &
MESH_PIDS+=($!)
for _ in $(seq 1 50); do
	[[ $(cat "$TMP"/mesh-*.log 2>/dev/null | grep -c ready) -ge 2 ]] && break
	sleep 0.1
done
echo "  orders: one process in $P/orders serving 127.0.0.1:9001 (orders-1) and :9002 (orders-2)"
echo "  frontend: its own server on 127.0.0.1:9101 in $P/frontend (all inside $P-lb)"

step "tdagent -c docs/examples/td.yaml (in $P-lb)"
cp "$REPO/docs/examples/td.yaml" "$TMP/td.yaml"
cp -r "$REPO/docs/examples/gw" "$TMP/gw"   # the gateway's demo files, relative to the config
# The agent gets a private mount namespace with its own hosts file and a resolv.conf pointing at
# nothing (127.0.0.1:53, closed): the forward proxy resolves names, and no DNS query may leave.
printf '127.0.0.1 localhost\n10.10.13.2 origin.demo.example\n' >"$TMP/hosts"
printf 'nameserver 127.0.0.1\n' >"$TMP/resolv.conf"
nsenter --net="/run/netns/$P-lb" unshare -m sh -c 'mount --bind "$1" /etc/hosts &&
	mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"' sh "$TMP/hosts" "$TMP/resolv.conf" \
	"$TDAGENT" -c "$TMP/td.yaml" >"$TMP/agent.out" 2>"$TMP/agent.log" &
AGENT_PID=$!
for _ in $(seq 1 150); do
	grep -q 'ready:' "$TMP/agent.log" && break
	kill -0 "$AGENT_PID" 2>/dev/null || break
	sleep 0.1
done
grep -q 'ready:' "$TMP/agent.log" || { tail -n 20 "$TMP/agent.log" >&2; die "tdagent did not become ready"; }
grep -m1 'ready:' "$TMP/agent.log" | sed 's/^/  /'

declare -A SEEN
LABELS=()
cl() { timeout 5 ip netns exec "$P-cl" "$@"; }
show() { # show LABEL ANSWER
	printf '  %-34s -> %s\n' "$1" "${2:-(no answer)}"
	[[ -n ${SEEN["$1"]+x} ]] || LABELS+=("$1")
	SEEN["$1"]+="${2:-none} "
}

step "TCP through the VIPs (curl from the client namespace)"
for i in 1 2 3 4 5 6; do
	show "web4 http://10.200.0.100/ (nat)" "$(cl curl -s --max-time 2 http://10.200.0.100/)"
done
for i in 1 2 3 4; do
	show "web6 http://[fd00:200::100]/ (nat)" "$(cl curl -s -g --max-time 2 'http://[fd00:200::100]/')"
done
for i in 1 2 3 4; do
	show "dsr4 http://10.200.0.101:8080/ (dsr)" "$(cl curl -s --max-time 2 http://10.200.0.101:8080/)"
done
for i in 1 2 3 4; do
	show "dsr6 http://[fd00:200::101]:8080/ (dsr)" "$(cl curl -s -g --max-time 2 'http://[fd00:200::101]:8080/')"
done
echo "  (each connection is a new flow; Maglev picks the backend from its 5-tuple)"

step "UDP through the VIPs (socat, a new source port each time)"
for i in 1 2 3 4; do
	show "udp4 10.200.0.100:53 (nat)" "$(echo hello | cl socat -t1 - UDP4:10.200.0.100:53)"
done
for i in 1 2 3 4; do
	show "udp6 [fd00:200::100]:53 (nat)" "$(echo hello | cl socat -t1 - 'UDP6:[fd00:200::100]:53')"
done

ctl() { nsenter --net="/run/netns/$P-lb" "$TDCTL" "$@"; }
step "tdctl services"
ctl services
step "tdctl stats"
ctl stats
step "tdctl conntrack (first 15 lines)"
ctl conntrack | head -n 15
step "bpftool map dump pinned $BPFFS/td_svc (VIP -> service; first 44 lines)"
bpftool map dump pinned "$BPFFS/td_svc" | head -n 44

step "operations: drain, health checks, reload, metrics (web4)"
web4_round() { # web4_round LABEL: 6 new connections, print who answered
	local out="" i
	for i in 1 2 3 4 5 6; do
		out+="$(cl curl -s --max-time 2 http://10.200.0.100/ || echo none) "
	done
	printf '  %-44s -> %s\n' "$1" "$out"
	OPS_LAST=$out
}
web4_state() { ctl --json services | python3 -c '
import json, sys
for s in json.load(sys.stdin)["services"]:
    if s["name"] == "web4":
        print("  web4 backends: " + ", ".join("%s:%d %s%s" % (b["address"], b["port"], b.get("health", "?"),
              " drained" if b.get("drained") else "") for b in s["backends"]))'; }
ops_ok=0 ops_bad=0
ops_check() { if eval "$2"; then ops_ok=$((ops_ok + 1)); else ops_bad=$((ops_bad + 1)); echo "  !! $1"; fi; }

ctl backend drain web4 10.10.13.2:8080 | sed 's/^/  /'
web4_round "after drain of b3 (10.10.13.2)"
ops_check "drained b3 still got new connections" '[[ $OPS_LAST != *b3* ]]'
ctl backend undrain web4 10.10.13.2:8080 | sed 's/^/  /'

kill "${TOPO_PIDS[0]}" 2>/dev/null; wait "${TOPO_PIDS[0]}" 2>/dev/null
echo "  stopped the server of b1; the agent's HTTP checks (every 500 ms, fall 2) notice"
for _ in $(seq 1 40); do web4_state | grep -q '10.10.11.2:8080 down' && break; sleep 0.1; done
web4_state
web4_round "with b1 down"
ops_check "b1 was not taken out" '[[ $OPS_LAST != *b1* && $OPS_LAST != *none* ]]'
topo_spawn "${TOPO_BACKENDS[0]}" "$TMP/$P-srv-b1-again.log" python3 "$REPO/selftests/netns/servers.py" \
	--name b1 --tcp 8080 --udp 5353 --lifetime 100
for _ in $(seq 1 40); do web4_state | grep -q '10.10.11.2:8080 up' && break; sleep 0.1; done
echo "  restarted it (rise 2):"
web4_state

cp "$TMP/td.yaml" "$TMP/td.yaml.orig"
echo "  bad: [unclosed" >>"$TMP/td.yaml"
echo "  tdctl reload with a broken file (nothing changes):"
out=$(ctl reload 2>&1); rc=$?
sed 's/^/    /' <<<"$out"
ops_check "a broken file was accepted" '((rc != 0))'
sed 's/weight: 3 }/weight: 1 }/' "$TMP/td.yaml.orig" >"$TMP/td.yaml"
echo "  tdctl reload after setting b3's weight to 1 (only web4's ring is rebuilt):"
out=$(ctl reload 2>&1); rc=$?
sed 's/^/    /' <<<"$out"
ops_check "a valid reload failed" '((rc == 0))'

echo "  curl http://127.0.0.1:9469/metrics (inside the LB namespace), a few lines:"
nsenter --net="/run/netns/$P-lb" curl -s --max-time 2 http://127.0.0.1:9469/metrics |
	grep -E '^td_(service_new_flows_total\{service="web4"|backend_up\{service="web4"|config_generation)' |
	sed 's/^/    /'
# (not "curl | grep -q": grep stops reading early and curl's SIGPIPE fails the pipe)
metrics=$(nsenter --net="/run/netns/$P-lb" curl -sf --max-time 2 http://127.0.0.1:9469/metrics)
ops_check "no metrics" 'grep -q td_config_generation <<<"$metrics"'

step "service mesh: VIP orders 10.96.80.10:80 -> 127.0.0.1:9001/9002, sockmap redirect on"
mesh_ok=0 mesh_bad=0
mesh_check() { if eval "$2"; then mesh_ok=$((mesh_ok + 1)); else mesh_bad=$((mesh_bad + 1)); echo "  !! $1"; fi; }
mctl() { ctl --json mesh 2>/dev/null; }
mcnt() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["counters"].get(sys.argv[1], 0))' "$1"; }
echo "  cgroup programs on $CG_MNT (mesh.cgroup_root, the default):"
bpftool cgroup show "$CG_MNT" 2>/dev/null | awk '/ td_m_/ { print $NF }' | sort | tr '\n' ' ' |
	fold -s -w 92 | sed 's/^/    /'
echo
before=$(mctl)
echo "  8 connections from a process in $P/frontend to 10.96.80.10:80, 64 KiB echoed on each:"
out=$(in_cg frontend timeout 20 python3 "$TMP/meshdemo.py" client 10.96.80.10 80 8 65536)
python3 -c '
import json, sys
for i, l in enumerate(sys.stdin):
    d = json.loads(l)
    if "errno" in d: print("    conn %d: %s" % (i + 1, d["errno"])); continue
    print("    conn %d: answered by %-9s getpeername %s  64 KiB echoed %s" %
          (i + 1, d["backend"], d["peer"], "intact" if d["intact"] else "CORRUPT"))' <<<"$out"
n_good=$(grep -c '"peer": "10.96.80.10:80", "intact": true' <<<"$out")
mesh_check "not all 8 connections reached orders with the VIP as peer and intact data" '((n_good == 8))'
if ((n_good != 8)); then
	grep -h 'mesh' "$TMP/agent.log" | tail -n 5 | sed 's/^/    agent| /'
	tail -n 5 "$TMP"/mesh-*.log | sed 's/^/    srv| /'
fi
after=$(mctl)
redir=$(($(mcnt msg_redirect_bytes <<<"$after") - $(mcnt msg_redirect_bytes <<<"$before")))
joins=$(($(mcnt sock_join_active <<<"$after") - $(mcnt sock_join_active <<<"$before")))
joinp=$(($(mcnt sock_join_passive <<<"$after") - $(mcnt sock_join_passive <<<"$before")))
echo "  redirect (both services have sockmap: true): $joins client + $joinp server sockets joined the"
echo "  SOCKHASH at establishment, $redir payload bytes went socket to socket (no TCP/IP stack)"
mesh_check "redirect not taken ($joins/$joinp joins, $redir bytes)" '((joins >= 8 && joinp >= 8 && redir >= 8 * 65536))'

echo "  a process in $P/intruder (a cgroup of no service: identity unknown) connects to the VIP:"
out=$(in_cg intruder timeout 10 python3 "$TMP/meshdemo.py" client 10.96.80.10 80 1 1)
echo "    $out"
mesh_check "the intruder was not refused with EPERM" '[[ $out == *EPERM* ]]'
for _ in $(seq 1 30); do grep -q 'mesh: denied unknown -> orders' "$TMP/agent.log" && break; sleep 0.1; done
echo "  the agent's log:"
grep -m1 'mesh: denied unknown -> orders' "$TMP/agent.log" | sed 's/^/    /'
mesh_check "no denial line in the agent's log" 'grep -q "mesh: denied unknown -> orders 10.96.80.10:80/tcp (connect)" "$TMP/agent.log"'

echo "  tdctl mesh:"
ctl mesh | sed 's/^/    /'
mctl >"$TMP/mesh.json"
python3 - "$TMP/mesh.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["counters"]
print("    redirect counters (tdctl --json mesh): " + ", ".join("%s %d" % (k, c.get(k, 0)) for k in
      ("sock_join_active", "sock_join_passive", "msg_redirect", "msg_redirect_bytes",
       "msg_pass_no_peer", "msg_pass_budget")))
PY
conns=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(p["connections"] for p in d["pairs"] if p["src"]=="frontend" and p["dst"]=="orders"))' "$TMP/mesh.json")
den=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(p["denials"] for p in d["pairs"] if p["src"]=="unknown" and p["dst"]=="orders"))' "$TMP/mesh.json")
mesh_check "tdctl mesh: frontend -> orders should count 8 connections, unknown -> orders 1 denial (got $conns, $den)" '((conns == 8 && den == 1))'
echo "  the same in the metrics (curl http://127.0.0.1:9469/metrics | grep td_mesh_):"
metrics=$(nsenter --net="/run/netns/$P-lb" curl -sf --max-time 2 http://127.0.0.1:9469/metrics)
grep -E '^td_mesh_(connections_total|denials_total)\{' <<<"$metrics" | sed 's/^/    /'

step "API gateway: http://10.10.1.1:8000 and https://10.10.1.1:8443 (from the client namespace)"
# docs/gateway.md: routes, auth, rate limits, header edits, aggregation, TLS with SNI. The
# agent writes one access-log line per request to its stdout (here: $TMP/agent.out).
gw_ok=0 gw_bad=0
gw_check() { if eval "$2"; then gw_ok=$((gw_ok + 1)); else gw_bad=$((gw_bad + 1)); echo "  !! $1"; fi; }
gcurl() { cl curl -s --max-time 3 "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

out=""
for _ in 1 2 3 4; do out+="$(gcurl http://10.10.1.1:8000/users/hello | jget 'd["id"]') "; done
echo "  GET /users/hello x4 (round robin over b1, b2)        -> $out"
gw_check "round robin did not alternate b1 and b2" '[[ $out == *b1*b2* || $out == *b2*b1* ]]'
seen=$(gcurl -H 'X-Debug: 1' -H 'X-Forwarded-For: 6.6.6.6' http://10.10.1.1:8000/users/hello?x=1)
echo "  what the backend saw: $(jget '"path=%s env=%s debug=%s xff=%s rid=%s" % (d["path"], d["headers"].get("x-env"), d["headers"].get("x-debug"), d["headers"].get("x-forwarded-for"), d["headers"].get("x-request-id",["-"])[0][:8]+"...")' <<<"$seen")"
facts=$(jget '"%s|%s|%s|%s" % (d["path"], d["headers"].get("x-env"), d["headers"].get("x-debug"), d["headers"].get("x-forwarded-for"))' <<<"$seen")
gw_check "strip_prefix / header edits / X-Forwarded-For wrong: $facts" \
	'[[ $facts == "/hello|['"'"'demo'"'"']|None|['"'"'10.10.1.2'"'"']" ]]'
code=$(gcurl -o /dev/null -w '%{http_code}' http://10.10.1.1:8000/nowhere)
echo "  GET /nowhere (no route: 404, no backend touched)      -> $code"
gw_check "no route did not give 404" '[[ $code == 404 ]]'

c1=$(gcurl -o /dev/null -w '%{http_code}' http://10.10.1.1:8000/admin/x)
c2=$(gcurl -o /dev/null -w '%{http_code}' -H 'X-API-Key: wrong' http://10.10.1.1:8000/admin/x)
sub=$(gcurl -H 'X-API-Key: demo-key-123' http://10.10.1.1:8000/admin/x | jget 'd["headers"]["x-auth-subject"][0]')
echo "  /admin without key, wrong key, right key             -> $c1, $c2, 200 as '$sub'"
gw_check "api keys" '[[ $c1 == 401 && $c2 == 401 && $sub == ci ]]'

tok=$(python3 "$REPO/selftests/gw/jwt.py" make --alg HS256 --secret-file "$TMP/gw/jwt.key" --sub alice --aud demo-api --exp-in 300)
old=$(python3 "$REPO/selftests/gw/jwt.py" make --alg HS256 --secret-file "$TMP/gw/jwt.key" --sub alice --aud demo-api --exp-in -300)
none=$(python3 "$REPO/selftests/gw/jwt.py" make --alg none --sub alice --aud demo-api --exp-in 300)
c1=$(gcurl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $old" http://10.10.1.1:8000/orders/1)
c2=$(gcurl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $none" http://10.10.1.1:8000/orders/1)
why=$(gcurl -D - -o /dev/null -H "Authorization: Bearer $old" http://10.10.1.1:8000/orders/1 | grep -i '^www-authenticate' | tr -d '\r')
echo "  /orders with an expired JWT, with alg none           -> $c1, $c2"
echo "    $why"
codes=""
for _ in 1 2 3 4 5 6 7; do codes+="$(gcurl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" http://10.10.1.1:8000/orders/1) "; done
ra=$(gcurl -D - -o /dev/null -H "Authorization: Bearer $tok" http://10.10.1.1:8000/orders/1 | grep -i '^retry-after' | tr -d '\r')
echo "  /orders with a valid JWT x7 (5/min per subject)      -> $codes($ra)"
gw_check "jwt / rate limit" '[[ $c1 == 401 && $c2 == 401 && $codes == "200 200 200 200 200 429 429 " && -n $ra ]]'

c1=$(gcurl -o /dev/null -w '%{http_code}' -u demo:nope http://10.10.1.1:8000/reports/q1)
c2=$(gcurl -o /dev/null -w '%{http_code}' -u demo:demo-password http://10.10.1.1:8000/reports/q1)
echo "  /reports with Basic demo:nope, demo:demo-password     -> $c1, $c2"
gw_check "basic auth" '[[ $c1 == 401 && $c2 == 200 ]]'

agg=$(gcurl http://10.10.1.1:8000/api/data)
echo "  GET /api/data (aggregate of b1 and b2 /data)         -> $agg"
gw_check "aggregation" '[[ $agg == "{\"service1\": {\"from\": \"b1\", \"items\": [1, 2, 3]}, \"service2\": {\"from\": \"b2\", \"items\": [1, 2, 3]}}" ]]'

tls=$(gcurl --resolve api.demo.example:8443:10.10.1.1 --cacert "$TMP/gw/demo.pem" https://api.demo.example:8443/users/tls | jget 'd["headers"]["x-forwarded-proto"][0]')
echo "  https://api.demo.example:8443/users/tls (SNI, verified) -> backend saw X-Forwarded-Proto: $tls"
gw_check "tls" '[[ $tls == https ]]'
metrics=$(nsenter --net="/run/netns/$P-lb" curl -sf --max-time 2 http://127.0.0.1:9469/metrics)
echo "  metrics (td_gw_requests_total, a few lines):"
grep -E '^td_gw_requests_total\{' <<<"$metrics" | head -n 6 | sed 's/^/    /'
gw_check "no gateway metrics" 'grep -q "^td_gw_requests_total{" <<<"$metrics"'
echo "  access log (the agent's stdout), last 3 lines:"
tail -n 3 "$TMP/agent.out" | sed 's/^/    /'

step "forward proxy: http://10.10.1.1:3128 (curl -x from the client namespace)"
# docs/forward-proxy.md: ACLs checked first, then the RFC 9111 cache; Cache-Status says what
# happened; the origin counts what reached it.
fp_ok=0 fp_bad=0
fp_check() { if eval "$2"; then fp_ok=$((fp_ok + 1)); else fp_bad=$((fp_bad + 1)); echo "  !! $1"; fi; }
pcurl() { cl curl -s --max-time 3 -x http://10.10.1.1:3128 "$@"; }
url='http://origin.demo.example/demo?cc=public,max-age=60'
cs1=$(pcurl -D - -o /dev/null "$url" | grep -i '^cache-status' | tr -d '\r')
cs2=$(pcurl -D - -o /dev/null "$url" | grep -i '^cache-status' | tr -d '\r')
via=$(pcurl "$url" | python3 -c 'import json,sys; print(json.load(sys.stdin)["headers"].get("via"))')
n=$(ip netns exec "${TOPO_BACKENDS[2]}" curl -s --max-time 2 http://10.10.13.2/count/demo)
echo "  GET $url (first)   -> $cs1"
echo "  the same again                                       -> $cs2"
echo "  origin requests for /demo: $n (the origin saw Via: $via)"
fp_check "cache miss then hit with one origin request" '[[ $cs1 == *fwd=miss* && $cs2 == *hit* && $n == 1 ]]'
code=$(pcurl -o "$TMP/fp.body" -w '%{http_code}' http://tracker.ads.example/)
echo "  GET http://tracker.ads.example/ (deny_domains *.ads.example) -> $code: $(head -c 80 "$TMP/fp.body")"
fp_check "deny_domains" '[[ $code == 403 ]]'
code=$(pcurl -o /dev/null -w '%{http_connect}' -p https://10.10.13.2:22/ 2>/dev/null; true)
echo "  CONNECT 10.10.13.2:22 (connect_ports: 443 only) -> $code"
fp_check "CONNECT to 22 refused" '[[ $code == 403 ]]'
echo "  access log (Squid format, the agent's stdout):"
grep -E ' (TCP_[A-Z_]+)/[0-9]+ ' "$TMP/agent.out" | tail -n 4 | sed 's/^/    /'
fp_check "no Squid-format access log lines" 'grep -qE " TCP_(MISS|HIT)/200 " "$TMP/agent.out"'
metrics=$(nsenter --net="/run/netns/$P-lb" curl -sf --max-time 2 http://127.0.0.1:9469/metrics)
echo "  metrics (td_fp_*, a few lines):"
grep -E '^td_fp_(cache|denials)' <<<"$metrics" | head -n 6 | sed 's/^/    /'
fp_check "no forward proxy metrics" 'grep -q "^td_fp_" <<<"$metrics"'

step "report"
ok=0 bad=0
for k in "${LABELS[@]}"; do
	answers=${SEEN[$k]}
	n_none=$(grep -o 'none' <<<"$answers" | wc -l)
	dist=$(tr ' ' '\n' <<<"$answers" | grep -v '^$' | sort | uniq -c | awk '{printf "%s×%s ", $2, $1}')
	printf '  %-38s %s\n' "$k" "$dist"
	if ((n_none)); then bad=$((bad + 1)); else ok=$((ok + 1)); fi
done
echo "  services answering every request: $ok of $((ok + bad))"
echo "  operations (drain, health, reload, metrics) as expected: $ops_ok of $((ops_ok + ops_bad))"
echo "  service mesh (translation, VIP in getpeername, redirect, denial, log, tdctl mesh) as expected: $mesh_ok of $((mesh_ok + mesh_bad))"
echo "  API gateway (routing, header edits, API keys, JWT, rate limit, Basic, aggregation, TLS, metrics) as expected: $gw_ok of $((gw_ok + gw_bad))"
echo "  forward proxy (cache miss/hit, domain and port rules, access log, metrics) as expected: $fp_ok of $((fp_ok + fp_bad))"
echo "  took $(($(date +%s) - T0)) s. Look around yourself with: tdctl status | services | stats |"
echo "  conntrack | mesh, tdctl backend drain SERVICE ADDR:PORT, bpftool map dump pinned $BPFFS/<map>"
((bad == 0 && ops_bad == 0 && mesh_bad == 0 && gw_bad == 0 && fp_bad == 0))
