#!/bin/bash
# make lab: build and start the simulated vCenter (tests/lab) by hand, and
# print how to mount a VM's snapshot from it.  Ctrl-C stops it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/lab/lab.sh"
lab_build "$top/build/lab"
dir=$(mktemp -d "${TMPDIR:-/tmp}/vmdkfs-lab.XXXXXX")
trap 'lab_stop; rm -rf "$dir"' EXIT
lab_start "$dir/lab" "$@"
printf '%s\n' "$LAB_PASSWORD" >"$dir/password"
chmod 600 "$dir/password"
cat <<EOT
The lab runs: $LAB_URL ($LAB_API_TYPE), VMs: $LAB_VMS
Control endpoint: $LAB_CONTROL/state
Mount a temporary snapshot of $LAB_VM with:

  mkdir -p /tmp/vm && $top/vmdkfs -o server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$dir/password,thumbprint=$LAB_THUMBPRINT_SHA256,vm=$LAB_VM,snapshot=new,datastore.$LAB_DATASTORE=$LAB_DATASTORE_DIR /tmp/vm

Unmount with fusermount3 -u /tmp/vm (the snapshot is removed then).
Press Ctrl-C to stop the lab.
EOT
wait "$LAB_PROC_PID"
