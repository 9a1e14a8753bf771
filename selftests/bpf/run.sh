#!/bin/sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Runs td_bpf_fixtures (or its --bench) inside a fresh network namespace that is always removed.
set -eu

usage() { echo "usage: $0 BUILD_DIR [--bench] [td_bpf_fixtures options...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
BUILD=$1; shift
BIN=$BUILD/bin/td_bpf_fixtures
[ -x "$BIN" ] || { echo "$0: $BIN not built (make $BIN)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: needs root (BPF prog-test-run, netns)" >&2; exit 2; }

# libbpf does not pin here (the runner clears every pin path), but keep a bpffs around for
# tools that expect one.
if [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" != bpf_fs ]; then
	mount -t bpf bpf /sys/fs/bpf
fi

NS=tdt-bpf-$$
cleanup() {
	ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ip netns add "$NS"
ip -n "$NS" link set lo up
# a second device so a backend on "another interface" gives XDP_REDIRECT (dummy, or a veth
# pair where the dummy driver is not available)
if ! ip -n "$NS" link add tdt-d0 type dummy 2>/dev/null; then
	ip -n "$NS" link add tdt-d0 type veth peer name tdt-d1
	ip -n "$NS" link set tdt-d1 up
fi
ip -n "$NS" link set tdt-d0 up

rc=0
ip netns exec "$NS" "$BIN" "$@" || rc=$?
exit $rc
