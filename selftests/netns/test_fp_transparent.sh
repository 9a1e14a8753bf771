#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Transparent forward-proxy redirect in the kernel (fp_redir): real processes in a cgroup2 folder
# of this test and a private netns with an "origin" address on its lo; TCP connect() to
# listed ports is sent to a stand-in proxy on loopback that reads the original destination from
# td_fp_origdst by its peer address; what must not be redirected is not; entries go at close;
# rule replacement, detach, cleanup. Usage: test_fp_transparent.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"

FP_CTL=$T_BUILD/bin/td_fp_ctl
CG_MNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
TMP=$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")
BPFFS=/sys/fs/bpf/tdt-fp-$T_ID-$$
CGR=${CG_MNT:-/nonexistent}/tdt-fp-$T_ID-$$
NS=tdt-fp-$T_ID-$$
ORIGIN=192.0.2.10            # TEST-NET-1, only on lo inside $NS (not 127/8: not "loopback")
ORIGIN6=2001:db8::10
P_HTTP=3129
P_TLS=3130
P_HTTP6=3131
PIDS=()
CLEANED=0

cleanup() {
	((CLEANED)) && return 0
	CLEANED=1
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	t_cgroup_kill "$CGR"
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if [[ -d $BPFFS ]]; then
		"$FP_CTL" detach-all "$BPFFS" >/dev/null 2>&1
		"$FP_CTL" unpin "$BPFFS" >/dev/null 2>&1
		rm -rf "$BPFFS"
	fi
	t_cgroup_remove "$CGR"
	ip netns del "$NS" 2>/dev/null
	[[ -n ${KEEP_TMP:-} ]] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# in_cg DIR CMD...: run CMD in cgroup folder DIR (absolute) and the test netns
in_cg() {
	local cg=$1
	shift
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec nsenter --net="/run/netns/$0" "$@"' \
		"$NS" "$cg" "$@"
}
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }

# client.py ADDR PORT [HOLD]: connect, print "peer=<getpeername> local=<getsockname>" at once,
# wait HOLD seconds, then print "got=<first line received>" and close.
cat >"$TMP/client.py" <<'EOF'
import socket, sys, time
addr, port = sys.argv[1], int(sys.argv[2])
hold = float(sys.argv[3]) if len(sys.argv) > 3 else 0
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
def fmt(a):
    if len(a) > 2:
        h = a[0][7:] if a[0].startswith("::ffff:") else "[%s]" % a[0]
        return "%s:%d" % (h, a[1])
    return "%s:%d" % a
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect((addr, port))
except OSError as e:
    print("error=%s" % e.errno, flush=True)
    sys.exit(0)
print("peer=%s local=%s" % (fmt(s.getpeername()), fmt(s.getsockname())), flush=True)
time.sleep(hold)
data = b""
try:
    while not data.endswith(b"\n"):
        b = s.recv(512)
        if not b:
            break
        data += b
except OSError:
    pass
print("got=%s" % data.decode().strip(), flush=True)
s.close()
EOF
# origin.py: answer "origin=ADDR:PORT" on every listed endpoint
cat >"$TMP/origin.py" <<'EOF'
import socket, sys, threading, time
def serve(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    tag = ("[%s]" % addr if fam == socket.AF_INET6 else addr) + ":%d" % port
    while True:
        c, _ = s.accept()
        c.sendall(("origin=%s\n" % tag).encode())
        c.close()
for ep in sys.argv[2:]:
    a, p = ep.rsplit(",", 1)
    threading.Thread(target=serve, args=(a, int(p)), daemon=True).start()
print("ready", flush=True)
time.sleep(float(sys.argv[1]))
EOF

# conn CG ADDR PORT [HOLD]: one client run (CG "" = the test's own cgroup), output on stdout
conn() {
	local cg=$1
	shift
	if [[ -n $cg ]]; then
		in_cg "$cg" python3 "$TMP/client.py" "$@" 2>&1
	else
		in_ns python3 "$TMP/client.py" "$@" 2>&1
	fi
}
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
counter() { "$FP_CTL" counters "$BPFFS" | awk -v n="$1" '$1 == n { print $2 }'; }
wait_ready() { # FILE N
	for _ in $(seq 1 50); do
		[[ $(grep -c ready "$1" 2>/dev/null) -ge $2 ]] && return 0
		sleep 0.1
	done
	return 1
}

t_section "cgroups under $CGR, netns $NS, bpffs $BPFFS"
if [[ -z $CG_MNT ]]; then
	_t_record FAIL "cgroup2 mounted" "a cgroup2 line in /proc/mounts" "none"
	t_done
fi
if [[ ! -x $FP_CTL ]]; then
	_t_record FAIL "td_fp_ctl built" "$FP_CTL (make all)" "missing"
	t_done
fi
topo_bpffs_mount
mkdir -p "$CGR"/{app/worker,other}
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add "$ORIGIN/32" dev lo
ip -n "$NS" addr add "$ORIGIN6/128" dev lo nodad
sleep 0.5   # ::1 leaves tentative state

in_ns python3 "$TMP/origin.py" 240 "$ORIGIN,80" "$ORIGIN,22" "$ORIGIN,443" "$ORIGIN6,80" \
	>"$TMP/origin.log" 2>&1 &
PIDS+=($!)
in_ns "$FP_CTL" load "$BPFFS" >"$TMP/load.log" 2>&1
t_eq "fp_redir loaded and pinned" "pinned" "$(cat "$TMP/load.log")"
in_ns "$FP_CTL" serve "$BPFFS" 127.0.0.1 $P_HTTP 0 >"$TMP/proxy-http.log" 2>&1 &
PIDS+=($!)
in_ns "$FP_CTL" serve "$BPFFS" 127.0.0.1 $P_TLS 0 >"$TMP/proxy-tls.log" 2>&1 &
PIDS+=($!)
in_ns "$FP_CTL" serve "$BPFFS" ::1 $P_HTTP6 0 >"$TMP/proxy-http6.log" 2>&1 &
PIDS+=($!)
wait_ready "$TMP/origin.log" 1 && wait_ready "$TMP/proxy-http.log" 1 &&
	wait_ready "$TMP/proxy-tls.log" 1 && wait_ready "$TMP/proxy-http6.log" 1
t_eq "origin and stand-in proxies listening" "0" "$?"

"$FP_CTL" rules "$BPFFS" "$CGR/app" "80=http@127.0.0.1:$P_HTTP" "443=tls@127.0.0.1:$P_TLS"
t_eq "rules for $CGR/app written" "0" "$?"
"$FP_CTL" attach "$BPFFS" "$CGR/app"
t_eq "programs attached to $CGR/app" "0" "$?"
"$FP_CTL" attach "$BPFFS" "$CGR/app"
t_eq "attach again is a no-op" "0" "$?"

t_section "redirected: a process in the cgroup (and below it)"
out=$(conn "$CGR/app" $ORIGIN 80)
local_ep=$(field local <<<"$out")
t_eq "app -> $ORIGIN:80: the stand-in proxy found the original destination" \
	"peer=$local_ep dst=$ORIGIN:80 kind=http" "$(sed -n 's/^got=//p' <<<"$out" | cut -d' ' -f1-3)"
t_eq "app -> $ORIGIN:80: getpeername shows the original destination" "$ORIGIN:80" \
	"$(field peer <<<"$out")"
pid_cg=$(grep -o 'cgroup=[0-9]*' "$TMP/proxy-http.log" | tail -1)
t_eq "entry names the client's cgroup" "cgroup=$(stat -c %i "$CGR/app")" "$pid_cg"
out=$(conn "$CGR/app/worker" $ORIGIN 443)
t_eq "app/worker (descendant) -> $ORIGIN:443: TLS listener, original destination" \
	"dst=$ORIGIN:443 kind=tls" "$(echo "$out" | grep -o 'dst=[^ ]* kind=[a-z]*' | head -1)"
out=$(conn "$CGR/app" "::ffff:$ORIGIN" 80)
t_eq "app, IPv6 socket -> ::ffff:$ORIGIN:80 (v4-mapped): redirected" \
	"dst=$ORIGIN:80 kind=http" "$(echo "$out" | grep -o 'dst=[^ ]* kind=[a-z]*' | head -1)"
t_eq "v4-mapped: getpeername shows the original destination" "$ORIGIN:80" \
	"$(field peer <<<"$out")"

t_section "not redirected"
out=$(conn "$CGR/app" $ORIGIN 22)
t_eq "app -> $ORIGIN:22 (port not listed): reaches the origin" "origin=$ORIGIN:22" \
	"$(field got <<<"$out")"
out=$(conn "$CGR/other" $ORIGIN 80)
t_eq "other cgroup -> $ORIGIN:80: reaches the origin" "origin=$ORIGIN:80" "$(field got <<<"$out")"
out=$(conn "" $ORIGIN 80)
t_eq "the test's own cgroup (like the agent) -> $ORIGIN:80: reaches the origin" \
	"origin=$ORIGIN:80" "$(field got <<<"$out")"
out=$(conn "$CGR/app" $ORIGIN6 80)
t_eq "app -> [$ORIGIN6]:80 with an IPv4 listener: not redirected (family)" \
	"origin=[$ORIGIN6]:80" "$(field got <<<"$out")"
out=$(conn "$CGR/app" 127.0.0.1 $P_HTTP)
t_eq "app -> the listener itself: not redirected, no entry" "dst=none" \
	"$(echo "$out" | grep -o 'dst=[a-z]*' | head -1)"
out=$(conn "$CGR/app" 127.0.0.2 80)
t_eq "app -> 127.0.0.2:80 (listed port, loopback): not redirected (refused)" "error=111" "$out"

t_section "td_fp_origdst lifetime"
conn "$CGR/app" $ORIGIN 80 2 >"$TMP/held.out" &
held=$!
for _ in $(seq 1 30); do grep -q local= "$TMP/held.out" && break; sleep 0.1; done
lport=$(field local <"$TMP/held.out" | sed 's/.*://')
t_eq "open connection: entry present under (127.0.0.1, $lport, $P_HTTP)" "dst=$ORIGIN:80" \
	"$("$FP_CTL" lookup "$BPFFS" 127.0.0.1 "${lport:-0}" $P_HTTP)"
t_eq "the same client port under the TLS listener's port: no entry" "dst=none" \
	"$("$FP_CTL" lookup "$BPFFS" 127.0.0.1 "${lport:-0}" $P_TLS)"
wait "$held"
n=
for _ in $(seq 1 30); do
	n=$("$FP_CTL" count "$BPFFS")
	[[ $n == 0 ]] && break
	sleep 0.1
done
t_eq "every client closed: td_fp_origdst empty" "0" "$n"
t_ge "counter redirect" 4 "$(counter redirect)"
t_ge "counter publish" 4 "$(counter publish)"
t_eq "counter unpublish = publish" "$(counter publish)" "$(counter unpublish)"
t_ge "counter restore_peer" 2 "$(counter restore_peer)"
t_ge "counter pass_no_rule" 1 "$(counter pass_no_rule)"
t_ge "counter pass_family" 1 "$(counter pass_family)"
t_ge "counter pass_loopback" 1 "$(counter pass_loopback)"
t_eq "counter err_origdst" "0" "$(counter err_origdst)"

t_section "rules replaced: IPv6 listener for 80, 443 no longer listed"
"$FP_CTL" rules "$BPFFS" "$CGR/app" "80=http@[::1]:$P_HTTP6"
t_eq "new rules written" "0" "$?"
out=$(conn "$CGR/app" $ORIGIN6 80)
t_eq "app -> [$ORIGIN6]:80: IPv6 listener, original destination" \
	"dst=[$ORIGIN6]:80 kind=http" "$(echo "$out" | grep -o 'dst=[^ ]* kind=[a-z]*' | head -1)"
t_eq "IPv6: getpeername shows the original destination" "[$ORIGIN6]:80" "$(field peer <<<"$out")"
out=$(conn "$CGR/app" $ORIGIN 443)
t_eq "app -> $ORIGIN:443 (rule pruned): reaches the origin" "origin=$ORIGIN:443" \
	"$(field got <<<"$out")"
out=$(conn "$CGR/app" $ORIGIN 80)
t_eq "app -> $ORIGIN:80 with an IPv6 listener: not redirected (family)" "origin=$ORIGIN:80" \
	"$(field got <<<"$out")"

t_section "missing cgroup, detach"
err=$("$FP_CTL" rules "$BPFFS" "$CGR/nope" "80=http@127.0.0.1:$P_HTTP" 2>&1)
rc=$?
if ((rc != 0)) && [[ $err == *"$CGR/nope"*"does not exist"* ]]; then
	_t_record PASS "rules for a missing cgroup refused, named" "rc != 0, path" "rc $rc"
else
	_t_record FAIL "rules for a missing cgroup refused, named" "rc != 0, path" "rc $rc: $err"
fi
out=$(conn "$CGR/app" $ORIGIN6 80)
t_eq "a refused rule set changed nothing" "dst=[$ORIGIN6]:80 kind=http" \
	"$(echo "$out" | grep -o 'dst=[^ ]* kind=[a-z]*' | head -1)"
t_eq "scan finds the attached folder" "$CGR/app" "$("$FP_CTL" scan "$BPFFS")"
t_eq "detach-all detaches the 5 programs" "5" "$("$FP_CTL" detach-all "$BPFFS")"
t_eq "scan after detach-all: nothing" "" "$("$FP_CTL" scan "$BPFFS")"
out=$(conn "$CGR/app" $ORIGIN6 80)
t_eq "after detach: app -> [$ORIGIN6]:80 reaches the origin" "origin=[$ORIGIN6]:80" \
	"$(field got <<<"$out")"
"$FP_CTL" unpin "$BPFFS"
t_eq "unpin" "0" "$?"
t_eq "no td_fp pin left" "" "$(ls "$BPFFS" 2>/dev/null | grep -E '^(td_fp_|prog_fp_)')"

t_done
