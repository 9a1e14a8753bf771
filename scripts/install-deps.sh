#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Install (or with --check, verify) every Debian 12 package the build, tests, demo and benches need.
#
#   scripts/install-deps.sh           install what is missing (apt-get update only if needed)
#   scripts/install-deps.sh --check   exit 0 when everything is installed, 1 otherwise (lists missing)
#
# Idempotent: a second run installs nothing. Never starts services: the nginx, haproxy, squid and
# tinyproxy packages try to start their daemons on install; a temporary policy-rc.d forbids it
# (and anything that still got started is stopped afterwards).
set -euo pipefail

PKGS=(
	# build
	clang llvm libclang-rt-14-dev bpftool libbpf-dev libelf-dev zlib1g-dev pkg-config
	libnl-3-dev libnl-route-3-dev libyaml-dev libcunit1-dev libjson-c-dev libev-dev gcc make
	libssl-dev libcrypt-dev liburing-dev
	# netns tests, demo
	iproute2 iputils-ping python3 python3-requests curl socat ethtool util-linux coreutils procps
	# benches: peers and load generator (nginx stream module is dynamic in Debian 12)
	nftables nginx-light libnginx-mod-stream haproxy wrk squid tinyproxy
)

missing_pkgs() {
	local p st
	for p in "${PKGS[@]}"; do
		st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
		[[ "$st" == ii* ]] || echo "$p"
	done
}

mapfile -t MISSING < <(missing_pkgs)

if [[ "${1:-}" == "--check" ]]; then
	if ((${#MISSING[@]})); then
		echo "install-deps: missing: ${MISSING[*]}" >&2
		exit 1
	fi
	echo "install-deps: all ${#PKGS[@]} packages installed"
	exit 0
elif [[ $# -gt 0 ]]; then
	echo "usage: $0 [--check]" >&2
	exit 2
fi

if ((${#MISSING[@]} == 0)); then
	echo "install-deps: all ${#PKGS[@]} packages installed, nothing to do"
	exit 0
fi

if [[ $EUID -ne 0 ]]; then
	echo "install-deps: must run as root to install: ${MISSING[*]}" >&2
	exit 1
fi

echo "install-deps: installing: ${MISSING[*]}"

# Forbid service starts during the install; restore whatever policy-rc.d was there before.
POLICY=/usr/sbin/policy-rc.d
POLICY_BAK=""
if [[ -e $POLICY ]]; then
	POLICY_BAK=$(mktemp /tmp/td-policy-rc.d.XXXXXX)
	cp -p "$POLICY" "$POLICY_BAK"
fi
restore_policy() {
	if [[ -n $POLICY_BAK ]]; then
		cp -p "$POLICY_BAK" "$POLICY" && rm -f "$POLICY_BAK"
	else
		rm -f "$POLICY"
	fi
}
trap restore_policy EXIT INT TERM
printf '#!/bin/sh\n# td install-deps: do not start services\nexit 101\n' >"$POLICY"
chmod 0755 "$POLICY"

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${MISSING[@]}"

# Belt and braces: nothing we installed should be running as a system service.
for svc in nginx haproxy squid tinyproxy; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
		systemctl stop "$svc" || true
	fi
done

mapfile -t STILL < <(missing_pkgs)
if ((${#STILL[@]})); then
	echo "install-deps: still missing after install: ${STILL[*]}" >&2
	exit 1
fi
echo "install-deps: done"
