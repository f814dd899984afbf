#!/bin/sh
# Install the Debian 12 packages that a make target needs, if missing.
# usage: scripts/install-deps.sh [--missing] build|test|demo|bench
# (--missing: print what is missing, install nothing)
# Runs apt-get only when something is missing; needs root for that.
set -eu

build="gcc make pkg-config libfuse3-dev fuse3 libcurl4-openssl-dev libxml2-dev libssl-dev zlib1g-dev nbdkit nbdkit-plugin-dev"
# Independent oracles and tools the tests use.
test="$build libnbd-bin clang qemu-utils libvmdk-utils python3-vmdkstream attr python3 golang-go golang-github-vmware-govmomi-dev curl openssl iproute2 groff-base man-db vmfs-tools vmfs6-tools fdisk gdisk e2fsprogs ntfs-3g qemu-system-common"
demo="$build qemu-utils fdisk e2fsprogs attr"
bench="$test libnbd-bin qemu-utils"

# --missing KIND: only print what is missing (for the Makefile's message).
only_list=""
if [ "${1:-}" = --missing ]; then
	only_list=1
	shift
fi

case "${1:-build}" in
build) want=$build ;;
test) want=$test ;;
demo) want=$demo ;;
bench) want=$bench ;;
*) echo "usage: $0 build|test|demo|bench" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
if [ -n "$only_list" ]; then
	echo "${missing# }"
	exit 0
fi
[ -z "$missing" ] && exit 0

echo "installing:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "$0: need root to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
