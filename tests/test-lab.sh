#!/bin/bash
# The simulated vCenter/ESXi itself (tests/lab/smoke.sh): its SOAP API, the
# simulated parts (real delta disks, DisableMethods, session expiry, fault
# injection) checked with curl and hand-written SOAP.
top=$(cd "$(dirname "$0")/.." && pwd)
VMDKFS_LAB_OUT=${VMDKFS_LAB_OUT:-$top/build/lab} exec bash "$top/tests/lab/smoke.sh"
