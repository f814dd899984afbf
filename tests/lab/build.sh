#!/bin/bash
# Build the vCenter/ESXi simulator used by vmdkfs's tests, offline, from
# Debian's govmomi Go source:  tests/lab/build.sh OUTDIR  ->  OUTDIR/vmdkfs-lab
# Needs the Debian packages golang-go and golang-github-vmware-govmomi-dev
# (at run time also qemu-utils).  Does nothing when the binary is newer than
# every source (*.go, *.json: nfc_records.json is embedded, build.sh).
# Exit 0 built or up to date, 1 build failed, 2 usage, 3 Go or govmomi
# missing.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
bin=$out/vmdkfs-lab
gocode=/usr/share/gocode

missing=""
command -v go >/dev/null 2>&1 || missing="$missing golang-go"
[ -d "$gocode/src/github.com/vmware/govmomi/simulator" ] || missing="$missing golang-github-vmware-govmomi-dev"
if [ -n "$missing" ]; then
	echo "$0: missing Debian package(s):$missing" >&2
	echo "  install with: apt-get install -y$missing" >&2
	exit 3
fi

if [ -x "$bin" ] && [ -z "$(find "$here" -maxdepth 1 \( -name '*.go' -o -name '*.json' -o -name build.sh \) -newer "$bin" | head -1)" ]; then
	exit 0
fi

# GOPATH mode, no module downloads: everything comes from /usr/share/gocode.
export GO111MODULE=off GOPATH=$gocode GOPROXY=off GOFLAGS= GOTOOLCHAIN=local CGO_ENABLED=0
if [ -z "${GOCACHE:-}" ]; then
	if [ -n "${HOME:-}" ] && mkdir -p "$HOME/.cache/go-build" 2>/dev/null && [ -w "$HOME/.cache/go-build" ]; then
		export GOCACHE=$HOME/.cache/go-build
	else
		export GOCACHE=$out/.gocache
	fi
fi
cd "$here"
if ! go build -trimpath -o "$bin.tmp" .; then
	rm -f "$bin.tmp"
	echo "$0: go build failed" >&2
	exit 1
fi
mv -f "$bin.tmp" "$bin"
