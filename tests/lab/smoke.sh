#!/bin/bash
# Smoke test of the vmdkfs lab (simulated vCenter and ESXi): builds it,
# starts it, and talks to it with curl and hand-written SOAP, and to its
# authd/NFC server with nfc_client.py (the lab's own client).
# Exit 0 pass, 1 fail, 77 skipped (Go, govmomi or a tool missing).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab.sh
. "$here/lab.sh"

skip() {
	echo "SKIP: $*"
	exit 77
}
for c in curl qemu-img qemu-io od; do
	command -v $c >/dev/null 2>&1 || skip "$c is not installed"
done
command -v go >/dev/null 2>&1 || skip "Go is not installed (Debian package golang-go)"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 is not installed (Debian package python3)"
[ -d /usr/share/gocode/src/github.com/vmware/govmomi/simulator ] ||
	skip "govmomi is not installed (Debian package golang-github-vmware-govmomi-dev)"

work=$(mktemp -d "${TMPDIR:-/tmp}/vmdkfs-lab-smoke.XXXXXX")
trap 'lab_stop; [ -n "${VMDKFS_LAB_KEEP:-}" ] && echo "# kept $work" || rm -rf "$work"' EXIT

build_rc=0
lab_build "${VMDKFS_LAB_OUT:-$work/bin}" || build_rc=$?
case $build_rc in
0) ;;
77) skip "Go or govmomi missing" ;;
*) echo "FAIL: building the lab"; exit 1 ;;
esac

pass=0 failn=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
nok() {
	failn=$((failn + 1))
	echo "not ok - $*"
	[ -f "${LAB_RESP:-/nonexistent}" ] && head -c 1500 "$LAB_RESP" | sed 's/^/    /' && echo
}
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else nok "$what"; fi
}
has() { grep -q -- "$1" "$LAB_RESP"; }
status() { [ "$LAB_HTTP" = "$1" ]; }
fault() { status 500 && has "xsi:type=\"$1\""; }
first4() { od -An -tx1 -N4 -j "${2:-0}" "$1" | tr -d ' \n'; }
taskref() { sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP"; }
task_result() { lab_props Task "$1" info.result && sed -n 's:.*type="VirtualMachineSnapshot">\([^<]*\)</val>.*:\1:p' "$LAB_RESP"; }
vm_files() { lab_props VirtualMachine "$LAB_VM_MOREF" config.hardware.device && grep -o '<fileName>[^<]*</fileName>' "$LAB_RESP" | sed 's:</*fileName>::g'; }

# ---- PropertyCollector result paging (SIMULATED: vcsim has none):
# RetrievePropertiesEx of every VM's name through a ContainerView with the
# lab's page size forced to 1, then ContinueRetrievePropertiesEx until no
# token; options.maxObjects; CancelRetrievePropertiesEx; bad tokens.
# $1: label prefix.  Needs a session.
token() { sed -n 's:.*<token>\([^<]*\)</token>.*:\1:p' "$LAB_RESP"; }
names() { grep -o '<val xsi:type="xsd:string">[^<]*</val>' "$LAB_RESP" | sed 's:<[^>]*>::g'; }
nobjects() { grep -o '<objects>' "$LAB_RESP" | wc -l; }
pc_call() { # METHOD INNER-XML: a PropertyCollector call
	lab_soap "<$1 xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$LAB_PC</_this>$2</$1>"
}
paging_check() {
	local p=$1 view spec tok first all pages=1 ok1=1 i want got
	lab_soap '<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>'
	lab_soap "<CreateContainerView xmlns=\"urn:vim25\"><_this type=\"ViewManager\">$(lab_sc_ref viewManager)</_this><container type=\"Folder\">$(lab_sc_ref rootFolder)</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>"
	view=$(sed -n 's:.*<returnval type="ContainerView">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
	check "$p: CreateContainerView of all VMs" [ -n "$view" ]
	spec="<specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet></propSet><objectSet><obj type=\"ContainerView\">$view</obj><skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>v</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet></specSet>"
	want=$(printf '%s\n' $LAB_VMS | sort | tr '\n' ' ')

	pc_call RetrievePropertiesEx "$spec<options/>"
	check "$p: without paging, RetrievePropertiesEx answers every VM and no token" \
		eval 'status 200 && [ "$(names | sort | tr "\n" " ")" = "$want" ] && ! has "<token>"'
	# the same as a plain multi-object spec (for another session)
	spec2="<specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet></propSet>$(grep -o '<obj type="VirtualMachine">[^<]*</obj>' "$LAB_RESP" | sed 's:.*:<objectSet>&</objectSet>:' | tr -d '\n')</specSet>"
	check "$p: /lab/page?max=1" eval 'lab_ctl "page?max=1" | grep "\"page_size\": 1" >/dev/null'
	pc_call RetrievePropertiesEx "$spec<options/>"
	tok=$(token)
	check "$p: paged RetrievePropertiesEx: one object and a token, token first in returnval" \
		eval 'status 200 && [ -n "$tok" ] && [ "$(nobjects)" = 1 ] && has "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval><token>$tok</token><objects>"'
	first=$tok
	all=$(names)
	for i in $(seq 1 20); do
		[ -n "$tok" ] || break
		pc_call ContinueRetrievePropertiesEx "<token>$tok</token>"
		status 200 && has "<ContinueRetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval>" && [ "$(nobjects)" = 1 ] || ok1=0
		pages=$((pages + 1))
		all=$(printf '%s\n%s' "$all" "$(names)")
		tok=$(token)
	done
	got=$(echo "$all" | sort | tr '\n' ' ')
	check "$p: ContinueRetrievePropertiesEx pages, one object each, until no token" \
		eval '[ "$ok1" = 1 ] && [ -z "$tok" ] && [ "$pages" = "$(echo $LAB_VMS | wc -w)" ]'
	check "$p: the pages' union is every VM ($got)" [ "$got" = "$want" ]
	pc_call ContinueRetrievePropertiesEx "<token>$first</token>"
	check "$p: a used token gives InvalidArgument" eval 'fault InvalidArgument && has "<invalidProperty>token</invalidProperty>"'
	pc_call ContinueRetrievePropertiesEx "<token>bogus-token</token>"
	check "$p: a bogus token gives InvalidArgument" fault InvalidArgument

	lab_ctl "page?max=0" >/dev/null
	pc_call RetrievePropertiesEx "$spec<options><maxObjects>1</maxObjects></options>"
	tok=$(token)
	check "$p: options.maxObjects=1 pages too" eval 'status 200 && [ -n "$tok" ] && [ "$(nobjects)" = 1 ]'
	local cookies=$LAB_COOKIES
	LAB_COOKIES=$LAB_DIR/cookies2.txt
	rm -f "$LAB_COOKIES"
	lab_login >/dev/null
	pc_call ContinueRetrievePropertiesEx "<token>$tok</token>"
	check "$p: another session's token gives InvalidArgument" fault InvalidArgument
	pc_call RetrievePropertiesEx "$spec2<options><maxObjects>1</maxObjects></options>"
	check "$p: two sessions, two pending results" eval '[ -n "$(token)" ] && [ "$(lab_ctl state | grep -c "\"objects_left\"")" = 2 ]'
	lab_soap "<Logout xmlns=\"urn:vim25\"><_this type=\"SessionManager\">$LAB_SM</_this></Logout>"
	LAB_COOKIES=$cookies
	sleep 0.5
	check "$p: the pending result of a session that ended is gone" eval '[ "$(lab_ctl state | grep -c "\"objects_left\"")" = 1 ]'
	pc_call CancelRetrievePropertiesEx "<token>$tok</token>"
	check "$p: CancelRetrievePropertiesEx" eval 'status 200 && has "<CancelRetrievePropertiesExResponse xmlns=\"urn:vim25\">"'
	pc_call ContinueRetrievePropertiesEx "<token>$tok</token>"
	check "$p: a cancelled token gives InvalidArgument" fault InvalidArgument
	pc_call CancelRetrievePropertiesEx "<token>$tok</token>"
	check "$p: cancelling it again gives InvalidArgument" fault InvalidArgument

	lab_ctl "page?max=1" >/dev/null
	lab_ctl reset >/dev/null
	pc_call RetrievePropertiesEx "$spec<options/>"
	check "$p: /lab/reset turns the forced page size off" \
		eval 'status 200 && ! has "<token>" && [ "$(nobjects)" = "$(echo $LAB_VMS | wc -w)" ] && lab_ctl state | grep "\"page_size\": 0" >/dev/null'
	lab_soap "<DestroyView xmlns=\"urn:vim25\"><_this type=\"ContainerView\">$view</_this></DestroyView>"
}

# ---- NFC (SIMULATED: tickets, authd, the NFC server; nfc_client.py is the
# lab's own client, stdlib Python)
nfc() { # ARGS...: run nfc_client.py, its JSON line in $work/nfc.json
	/usr/bin/python3 "$here/nfc_client.py" --env "$LAB_DIR/lab.env" "$@" >"$work/nfc.json" 2>&1
}
nj() { # PYTHON-EXPR on nfc_client.py's JSON line as j
	/usr/bin/python3 -c "import json; j=json.load(open('$work/nfc.json')); print($1)" 2>/dev/null
}
ns() { # PYTHON-EXPR on /lab/state as s
	lab_ctl state | /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"
}
nfc_show() { sed 's/^/    /' "$work/nfc.json"; }
# nlog_conforms [ROW...]: /lab/nfc/log since the last clear shows only
# messages with a row of nfc_records.json and no departure, each
# connection beginning with the "connect" sequence and ending with the
# "close" one, SOAP calls with rows and no departures, and a message of
# each ROW.
nlog_conforms() {
	lab_ctl "nfc/log" >"$work/nfclog.json"
	/usr/bin/python3 - "$here/nfc_records.json" "$work/nfclog.json" "$@" <<'PY'
import json, sys
t, log, need = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3:]
con, clo = t["sequences"]["connect"], t["sequences"]["close"]
bad, seen = [], set()
for c in log["connections"]:
    rows = [m["row"] for m in c["messages"]]
    seen.update(rows)
    bad += ["connection %d: %s %r" % (c["id"], m["row"] or "no row", m["departures"])
            for m in c["messages"] if not m["row"] or m["departures"]]
    if rows[:len(con)] != con or rows[-len(clo):] != clo:
        bad.append("connection %d: rows %s ... %s" % (c["id"], rows[:len(con)], rows[-len(clo):]))
bad += ["SOAP %s: %r" % (x["method"], x["departures"]) for x in log["soap"] if not x["row"] or x["departures"]]
bad += ["no %s" % w for w in ["connection"] * (not log["connections"]) + ["SOAP call"] * (not log["soap"])]
bad += ["no %s message" % r for r in need if r not in seen]
if bad:
    print("    " + "\n    ".join(bad))
sys.exit(1 if bad else 0)
PY
}
# nlog_py EXPR: a Python expression on the last /lab/nfc/log read (as l)
nlog_py() { /usr/bin/python3 -c "import json; l=json.load(open('$work/nfclog.json')); print($1)"; }
nfc_check() {
	local p=$1 vmref=$2 link=$3 local=$4
	lab_ctl "nfc/log?clear=1" >/dev/null
	nfc --vm "$vmref" --path "$link" --out "$work/nfc-nbd.raw"
	check "$p: nbd: ticket, authd, handshake, whole-disk read of a snapshot's link (1 MiB requests, 4 in flight)" \
		eval '[ "$(nj "j.get(\"fragments\", 0)")" = 256 ] || { nfc_show; false; }'
	check "$p: SET_SOCK_OPTS answers 1675000, 1675000, 1 (as recorded)" \
		eval '[ "$(nj "j[\"sock_opts\"]")" = "[1675000, 1675000, 1]" ] || { nfc_show; false; }'
	check "$p: /lab/nfc/log: the session's messages, each with its row, no departure (strict by default)" \
		eval 'nlog_conforms aio.read && lab_ctl nfc | grep -q "\"strict\": true"'
	local h
	h=$(nj "j['handle']")
	check "$p: /lab/nfc/log: one nbd connection, its handle, SESSION's ticket hidden, hostForAccess = the VM's host" \
		eval '[ "$(nlog_py "(lambda c, s: len(c) == 1 and c[0][\"mode\"] == \"nbd\" and c[0][\"handles\"] == [\"$h\"] and c[0][\"messages\"][0][\"line\"] == \"SESSION <ticket>\" and len(s) == 1 and s[0][\"host_for_access\"] == s[0][\"vm_host\"] != \"\")(l[\"connections\"], [x for x in l[\"soap\"] if x[\"method\"].startswith(\"Nfc\")])")" = True ]'
	check "$p: /lab/nfc/log?clear=1 empties it" \
		eval '[ "$(lab_ctl "nfc/log?clear=1" | tr -d " \n")" = "{\"connections\":[],\"soap\":[]}" ]'
	qemu-img convert -f vmdk -O raw "$local" "$work/nfc-qemu.raw"
	check "$p: nbd: the data is qemu-img's view of that link's chain" cmp -s "$work/nfc-nbd.raw" "$work/nfc-qemu.raw"
	lab_ctl "nfc?shuffle=1" >/dev/null
	nfc --ssl --vm "$vmref" --path "$link" --out "$work/nfc-ssl.raw"
	check "$p: nbdssl (second TLS session, same certificate), fragments out of order" \
		eval '[ "$(nj "j.get(\"out_of_order\", 0) > 0")" = True ] || { nfc_show; false; }'
	check "$p: nbdssl: the same data" cmp -s "$work/nfc-ssl.raw" "$work/nfc-qemu.raw"
	lab_ctl "nfc?shuffle=0&error=5&text=injected%20read%20error&count=1" >/dev/null
	nfc --vm "$vmref" --path "$link" --expect-error "5:injected read error"
	check "$p: an injected error surfaces as an ERROR record (code 5, its text)" \
		eval '[ "$(nj "len(j[\"errors\"])")" = 1 ] || { nfc_show; false; }'
	nfc --vm "$vmref" --path "$link" --no-read --reuse-ticket
	check "$p: a ticket is good once (500 the second time)" eval 'nj "j[\"reuse\"]" | grep -q "500 Invalid session ticket" || { nfc_show; false; }'
	lab_ctl "nfc?cut=100000" >/dev/null
	nfc --vm "$vmref" --path "$link"
	check "$p: cut=100000: the link drops after 100000 bytes of read data" \
		eval 'nj "j[\"fail\"]" | grep -q "got 34464" || { nfc_show; false; }'
	lab_ctl "nfc?wrong_thumbprint=1" >/dev/null
	nfc --vm "$vmref" --path "$link"
	check "$p: wrong_thumbprint=1: THUMBPRINT_SHA2 does not match the certificate" \
		eval 'nj "j[\"fail\"]" | grep -q "^THUMBPRINT_SHA2" || { nfc_show; false; }'
	lab_ctl "nfc?reset=1" >/dev/null

	# strict mode (the default) answers a departure loudly; strict=0 takes it
	lab_ctl "nfc/log?clear=1" >/dev/null
	nfc --vm "$vmref" --path "$link" --depart read32 --expect-error 3
	check "$p: strict: a read request with 0 at [32] gets an ERROR record (code 3, \"vmdkfs-lab strict: aio.read: ...\"), the other reads are served" \
		eval '[ "$(nj "j[\"errors\"][0][\"text\"].startswith(\"vmdkfs-lab strict: aio.read: [32] is 0\") and j[\"errors\"][0][\"offset\"] == 0 and j[\"fragments\"] == 240")" = True ] || { nfc_show; false; }'
	check "$p: strict: the log shows that departure on that message, with its source" strict_logged
	nfc --vm "$vmref" --path "$link" --probe "SESSIONID x"
	check "$p: strict: an authd line not in the records gets \"501 vmdkfs-lab strict: ...\"" \
		eval 'nj "j[\"probe\"]" | grep -q "^501 vmdkfs-lab strict: authd: the line \"SESSIONID x\" is not in the records" || { nfc_show; false; }'
	nfc_ticket_call urn:internalvim25
	check "$p: strict: a ticket call in urn:internalvim25 gets a SOAP fault saying so" \
		eval 'fault InvalidRequest && has "<faultstring>vmdkfs-lab strict: soap.ticket_ro: namespace urn:internalvim25, the records show urn:vim25"'
	nfc_ticket_call urn:vim25 ""
	check "$p: strict: a ticket call without hostForAccess gets a SOAP fault" \
		eval 'fault InvalidRequest && has "no hostForAccess argument"'
	lab_ctl "nfc?strict=0" >/dev/null
	nfc --vm "$vmref" --path "$link" --depart read32 --out "$work/nfc-nbd.raw"
	check "$p: strict=0: the same read request is served" \
		eval '[ "$(nj "j.get(\"fragments\", 0)")" = 256 ] && cmp -s "$work/nfc-nbd.raw" "$work/nfc-qemu.raw" || { nfc_show; false; }'
	nfc --vm "$vmref" --path "$link" --probe "SESSIONID x"
	check "$p: strict=0: an unknown authd command gets \"530 Please login with USER and PASS\" (as recorded)" \
		eval '[ "$(nj "j[\"probe\"]")" = "530 Please login with USER and PASS" ] || { nfc_show; false; }'
	nfc_ticket_call urn:internalvim25
	check "$p: strict=0: the ticket call in urn:internalvim25 is served" eval 'status 200 && has "<sessionId>52"'
	check "$p: strict=0: the departures are still recorded" \
		eval 'lab_ctl nfc/log | grep -q "namespace urn:internalvim25, the records show urn:vim25"'
	lab_ctl "nfc?reset=1" >/dev/null
	check "$p: reset=1 turns strict back on" eval 'lab_ctl nfc | grep -q "\"strict\": true"'
}
strict_logged() { # the only departure in the log: the read request with 0 at [32]
	lab_ctl "nfc/log" >"$work/nfclog.json"
	[ "$(nlog_py "[m['row'] for c in l['connections'] for m in c['messages'] if m['departures'] and m['departures'][0].startswith('[32] is 0, the records show \$len, which is 1048576 at [24] (records: read, ')] == ['aio.read'] == [m['row'] for c in l['connections'] for m in c['messages'] if m['departures']]")" = True ]
}
vm_host() { # MOREF: the VM's runtime.host
	lab_props VirtualMachine "$1" runtime.host && sed -n 's:.*<val [^>]*type="HostSystem"[^>]*>\([^<]*\)</val>.*:\1:p' "$LAB_RESP"
}
nfc_ticket_call() { # NS [HOST]: NfcRandomAccessOpenReadonly of LAB_VM's disk 2000 in NS, hostForAccess HOST (default: the VM's host; "": none)
	local h
	h=${2-$(vm_host "$LAB_VM_MOREF")}
	lab_soap "<NfcRandomAccessOpenReadonly xmlns=\"$1\"><_this type=\"NfcService\">nfcService</_this><vm type=\"VirtualMachine\">$LAB_VM_MOREF</vm><diskDeviceKey>2000</diskDeviceKey>${h:+<hostForAccess type=\"HostSystem\">$h</hostForAccess>}</NfcRandomAccessOpenReadonly>"
}

# ---- VMFS datastore (SIMULATED: vcsim's datastore is a local folder;
# /lab/vmfs reports it as a VMFS volume on the LUN the test names).
# vmfs_check LABEL VMREF LINK LOCAL: a disk link the NFC client may read
# (LINK) and its local file.  Needs a session.
vmfs_uuid=61137dd5-df6bc2c8-f0e7-000c29801686
vmfs_naa=naa.6000c29a1b2c3d4e5f60718293a4b5c6
vmfs_check() {
	local p=$1 vmref=$2 link=$3 local=$4 ds host ver filter r got
	lab_props VirtualMachine "$vmref" datastore
	ds=$(sed -n 's:.*<ManagedObjectReference type="Datastore">\([^<]*\)</ManagedObjectReference>.*:\1:p' "$LAB_RESP")
	host=$(vm_host "$vmref")
	check "$p: the VM's datastore ($ds) and host ($host)" eval '[ -n "$ds" ] && [ -n "$host" ]'
	lab_props Datastore "$ds" info
	check "$p: before /lab/vmfs the datastore is a LocalDatastoreInfo" \
		eval 'has "<val xsi:type=\"LocalDatastoreInfo\">" && ! has "<vmfs>"'
	# a PropertyCollector filter on info: WaitForUpdatesEx must see the change
	pc_call CreateFilter "<spec><propSet><type>Datastore</type><pathSet>info</pathSet></propSet><objectSet><obj type=\"Datastore\">$ds</obj></objectSet></spec><partialUpdates>false</partialUpdates>"
	filter=$(sed -n 's:.*<returnval type="PropertyFilter">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
	pc_call WaitForUpdatesEx "<version></version><options><maxWaitSeconds>5</maxWaitSeconds></options>"
	ver=$(sed -n 's:.*<version>\([^<]*\)</version>.*:\1:p' "$LAB_RESP")
	check "$p: WaitForUpdatesEx: the filter's first version" [ -n "$ver" ]

	check "$p: lab_vmfs UUID 6 DISKNAME 1" lab_vmfs "$vmfs_uuid" 6 "$vmfs_naa" 1
	lab_props Datastore "$ds" info
	check "$p: info is a VmfsDatastoreInfo with the lab's url and a HostVmfsVolume" \
		eval 'status 200 && has "<val xsi:type=\"VmfsDatastoreInfo\"><name>$LAB_DATASTORE</name><url>$LAB_DATASTORE_DIR</url><freeSpace>" && has "<vmfs><type>VMFS</type><name>$LAB_DATASTORE</name><capacity>"'
	check "$p: vmfs: blockSizeMb 1, blockSize 1024, majorVersion 6, version 6.82, the uuid" \
		eval 'has "<blockSizeMb>1</blockSizeMb><blockSize>1024</blockSize>" && has "<majorVersion>6</majorVersion><version>6.82</version><uuid>$vmfs_uuid</uuid>"'
	check "$p: vmfs: the extent (diskName, partition 1), not upgradable, not ssd, not local" \
		has "<extent><diskName>$vmfs_naa</diskName><partition>1</partition></extent><vmfsUpgradable>false</vmfsUpgradable><ssd>false</ssd><local>false</local>"
	lab_soap "<RetrieveProperties xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$LAB_PC</_this><specSet><propSet><type>Datastore</type><pathSet>info.vmfs.extent</pathSet><pathSet>summary.type</pathSet></propSet><objectSet><obj type=\"Datastore\">$ds</obj></objectSet></specSet></RetrieveProperties>"
	check "$p: RetrieveProperties: info.vmfs.extent and summary.type VMFS" \
		eval 'status 200 && has "<diskName>$vmfs_naa</diskName><partition>1</partition>" && has "<val xsi:type=\"xsd:string\">VMFS</val>"'
	lab_props Datastore "$ds" summary
	check "$p: summary.type is VMFS, summary.url unchanged" \
		eval 'has "<url>$LAB_DATASTORE_DIR</url>" && has "<type>VMFS</type>"'
	pc_call WaitForUpdatesEx "<version>$ver</version><options><maxWaitSeconds>5</maxWaitSeconds></options>"
	check "$p: WaitForUpdatesEx sees info change to VmfsDatastoreInfo" \
		eval 'has "<val xsi:type=\"VmfsDatastoreInfo\">" && has "<uuid>$vmfs_uuid</uuid>"'
	ver=$(sed -n 's:.*<version>\([^<]*\)</version>.*:\1:p' "$LAB_RESP")
	lab_props HostSystem "$host" config.storageDevice.scsiLun
	check "$p: the host's config.storageDevice.scsiLun has a HostScsiDisk $vmfs_naa (vml. descriptor), the old LUNs too" \
		eval 'has "<ScsiLun xsi:type=\"HostScsiDisk\"><deviceName>/vmfs/devices/disks/$vmfs_naa</deviceName>" && has "<canonicalName>$vmfs_naa</canonicalName>" && has "<id>vml.0200000000${vmfs_naa#naa.}" && has "<canonicalName>mpx.vmhba0:C0:T0:L0</canonicalName>"'

	nfc --ssl --vm "$vmref" --path "$link" --out "$work/nfc-vmfs.raw"
	qemu-img convert -U -f vmdk -O raw "$local" "$work/nfc-qemu.raw"
	check "$p: NFC (nbdssl) on the VMFS datastore: same paths and tickets, the data is qemu-img's" \
		eval '[ "$(nj "j.get(\"fragments\", 0) > 0")" = True ] && cmp -s "$work/nfc-vmfs.raw" "$work/nfc-qemu.raw" || { nfc_show; false; }'
	got=$(curl -sS --cacert "$LAB_CERT" -b "$LAB_COOKIES" -r 0-3 "https://$LAB_HOST:$LAB_PORT/folder/${link#\[*\] }?dcPath=$LAB_DATACENTER&dsName=$LAB_DATASTORE" | head -c 4)
	check "$p: /folder still serves the datastore's files" [ -n "$got" ]

	r=$(ns "' '.join('%s %s %s:%s' % (v['datastore'], v['version'], e['diskName'], e['partition']) for v in s['vmfs'] for e in v['extents'])")
	check "$p: /lab/state lists it (datastore, version 6, the extent)" [ "$r" = "$LAB_DATASTORE 6 $vmfs_naa:1" ]
	r=$(curl -sS -X POST -d '{"uuid":"61137dd5-df6bc2c8-f0e7-000c29801686","version":7,"extents":[{"diskName":"naa.1","partition":1}]}' "$LAB_CONTROL/vmfs")
	check "$p: version 7 is refused (HTTP 400, error)" eval 'echo "$r" | grep -q "\"error\": \"version: 7"'
	lab_ctl "vmfs?uuid=$vmfs_uuid&version=5&extent=$vmfs_naa:3&name=san-vol" >/dev/null
	lab_props Datastore "$ds" info
	check "$p: query form: VMFS5 (5.81), partition 3, volume name san-vol, no unmap fields" \
		eval 'has "<vmfs><type>VMFS</type><name>san-vol</name>" && has "<majorVersion>5</majorVersion><version>5.81</version>" && has "<partition>3</partition>" && ! has "<unmapPriority>"'

	check "$p: lab_vmfs_off (DELETE /lab/vmfs)" lab_vmfs_off
	lab_props Datastore "$ds" info
	check "$p: info is a LocalDatastoreInfo again (path = url)" \
		eval 'has "<val xsi:type=\"LocalDatastoreInfo\"><name>$LAB_DATASTORE</name><url>$LAB_DATASTORE_DIR</url>" && has "<path>$LAB_DATASTORE_DIR</path>" && ! has "<vmfs>"'
	lab_props Datastore "$ds" summary.type
	check "$p: summary.type is OTHER again" has '<val xsi:type="xsd:string">OTHER</val>'
	lab_props HostSystem "$host" config.storageDevice.scsiLun
	check "$p: the host's HostScsiDisk $vmfs_naa is gone, the old LUNs stay" \
		eval '! has "$vmfs_naa" && has "<canonicalName>mpx.vmhba0:C0:T0:L0</canonicalName>"'
	pc_call WaitForUpdatesEx "<version>$ver</version><options><maxWaitSeconds>5</maxWaitSeconds></options>"
	check "$p: WaitForUpdatesEx sees it go back to LocalDatastoreInfo" has '<val xsi:type="LocalDatastoreInfo">'
	lab_soap "<DestroyPropertyFilter xmlns=\"urn:vim25\"><_this type=\"PropertyFilter\">$filter</_this></DestroyPropertyFilter>"
	check "$p: DestroyPropertyFilter" eval '[ -n "$filter" ] && status 200'
	check "$p: /lab/vmfs?off=1 when not VMFS is fine; /lab/state vmfs is empty" \
		eval 'lab_ctl "vmfs?off=1" | grep -q "\"ok\": true" && [ "$(ns "s[\"vmfs\"]")" = "[]" ]'
}

# ---------------------------------------------------------------- vCenter
lab_start "$work/vpx" || { echo "FAIL: the lab did not start"; exit 1; }
echo "# vCenter lab at $LAB_URL (control $LAB_CONTROL)"

for k in LAB_URL LAB_HOST LAB_PORT LAB_CERT LAB_THUMBPRINT_SHA1 LAB_THUMBPRINT_SHA256 LAB_USER \
	LAB_PASSWORD LAB_DATASTORE LAB_DATASTORE_DIR LAB_CONTROL LAB_PID LAB_VM LAB_VM_MOREF; do
	[ -n "${!k:-}" ] || nok "env file has $k"
done
check "env: LAB_PID is the lab" [ "$LAB_PID" = "$LAB_PROC_PID" ]
check "env: LAB_URL is https on loopback" [ "$LAB_URL" = "https://127.0.0.1:$LAB_PORT/sdk" ]
check "env: thumbprints are colon-separated upper-case hex" \
	bash -c '[[ $0 =~ ^([0-9A-F]{2}:){19}[0-9A-F]{2}$ && $1 =~ ^([0-9A-F]{2}:){31}[0-9A-F]{2}$ ]]' "$LAB_THUMBPRINT_SHA1" "$LAB_THUMBPRINT_SHA256"
if command -v openssl >/dev/null 2>&1; then
	fp=$(openssl x509 -in "$LAB_CERT" -noout -fingerprint -sha256 | sed 's/.*=//')
	check "env: SHA-256 thumbprint matches the certificate" [ "$fp" = "$LAB_THUMBPRINT_SHA256" ]
fi
rc=0
curl -sS -o /dev/null --max-time 10 "$LAB_URL" 2>/dev/null || rc=$?
check "TLS: an unverified certificate is refused by curl (exit 60)" [ "$rc" = 60 ]

lab_service_content
check "RetrieveServiceContent: apiType VirtualCenter (TLS verified with LAB_CERT)" \
	eval 'status 200 && has "<apiType>VirtualCenter</apiType>"'

lab_props VirtualMachine "$LAB_VM_MOREF" name
check "no session: RetrievePropertiesEx gives NotAuthenticated" fault NotAuthenticated
lab_login "$LAB_USER" "wrong-$LAB_PASSWORD"
check "Login with a wrong password gives InvalidLogin" fault InvalidLogin
lab_login nobody@vsphere.local "$LAB_PASSWORD"
check "Login with a wrong user gives InvalidLogin" fault InvalidLogin
lab_login
check "Login with LAB_USER/LAB_PASSWORD" eval 'status 200 && has "<userName>$LAB_USER</userName>"'

vm=$LAB_VM
dir=$LAB_DATASTORE_DIR/$vm
files=$(vm_files)
check "answers use xsi:type as vSphere does" eval 'has "<val xsi:type=\"ArrayOfVirtualDevice\">" && ! has XMLSchema-instance:'
check "config.hardware.device shows the disk backing file" \
	eval '[ "$(echo "$files" | head -1)" = "[$LAB_DATASTORE] $vm/$vm.vmdk" ]'
check "disk: capacity, changeId and key 2000" \
	eval 'has "<capacityInBytes>$((LAB_DISK_MIB << 20))</capacityInBytes>" && has "<changeId>52 " && has "<key>2000</key>"'
check "disk files exist with real data (0x11 at 0)" eval '[ "$(first4 "$dir/$vm-flat.vmdk")" = 11111111 ]'
check "base descriptor is ESXi-style (createType vmfs)" grep -q '^createType="vmfs"' "$dir/$vm.vmdk"

url="https://$LAB_HOST:$LAB_PORT/folder/$vm/$vm-flat.vmdk?dcPath=$LAB_DATACENTER&dsName=$LAB_DATASTORE"
got=$(curl -sS --cacert "$LAB_CERT" -b "$LAB_COOKIES" -r 5242880-5242883 "$url" | od -An -tx1 | tr -d ' \n')
check "datastore HTTP GET with Range, with the session cookie" [ "$got" = eeeeeeee ]
code=$(curl -s --cacert "$LAB_CERT" -o /dev/null -w '%{http_code}' "$url")
check "datastore HTTP GET without a session: 401" [ "$code" = 401 ]

# ---- snapshot
lab_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this><name>smoke snap</name><description>lab smoke</description><memory>false</memory><quiesce>true</quiesce></CreateSnapshot_Task>"
task=$(taskref)
check "CreateSnapshot_Task returns a task" [ -n "$task" ]
check "CreateSnapshot_Task succeeds" [ "$(lab_task_wait "$task")" = success ]
snap=$(task_result "$task")
check "the task's result is a snapshot moref ($snap)" eval '[[ $snap == snapshot-* ]]'
files=$(vm_files)
check "the VM's disk now runs on the delta, parent = the base" \
	eval '[ "$(echo "$files" | sed -n 1,2p | tr "\n" " ")" = "[$LAB_DATASTORE] $vm/$vm-000001.vmdk [$LAB_DATASTORE] $vm/$vm.vmdk " ]'
check "deltaDiskFormat redoLogFormat" has '<deltaDiskFormat>redoLogFormat</deltaDiskFormat>'
check "the delta exists on disk" [ -f "$dir/$vm-000001.vmdk" ]
pcid=$(sed -n 's/^CID=//p' "$dir/$vm.vmdk")
ccid=$(grep -a -o 'parentCID=[0-9a-f]*' "$dir/$vm-000001.vmdk" | sed 's/.*=//')
check "delta parentCID ($ccid) == parent CID ($pcid)" eval '[ -n "$pcid" ] && [ "$pcid" = "$ccid" ]'
check "delta parentFileNameHint is the parent's relative name" grep -a -q "parentFileNameHint=\"$vm.vmdk\"" "$dir/$vm-000001.vmdk"
check "qemu-img sees the chain" eval 'qemu-img info "$dir/$vm-000001.vmdk" | grep -q "backing file: $vm.vmdk"'
lab_props VirtualMachineSnapshot "$snap" config.hardware.device
check "the snapshot's config shows the disk as of the snapshot (the base)" \
	eval '[ "$(grep -o "<fileName>[^<]*</fileName>" "$LAB_RESP" | head -1)" = "<fileName>[$LAB_DATASTORE] $vm/$vm.vmdk</fileName>" ] && ! has "$vm-000001.vmdk"'
lab_props VirtualMachine "$LAB_VM_MOREF" layoutEx
check "layoutEx lists the delta and the snapshot" eval 'has "$vm-000001.vmdk</name>" && has "<key type=\"VirtualMachineSnapshot\">$snap</key>"'
lab_props VirtualMachine "$LAB_VM_MOREF" snapshot
check "the VM's snapshot tree has it by name" eval 'has "<name>smoke snap</name>" && has "<currentSnapshot type=\"VirtualMachineSnapshot\">$snap</currentSnapshot>"'

lab_ctl "write?vm=$vm&disk=0&offset=4096&length=8192&pattern=0xab" >/dev/null
check "guest write goes to the delta" eval 'qemu-io -r -f vmdk -c "read -P 0xab 4096 8192" "$dir/$vm-000001.vmdk" | grep -q "^read 8192"'
check "the base (snapshot view) is unchanged" eval '[ "$(first4 "$dir/$vm-flat.vmdk" 4096)" = 11111111 ]'

# ---- DisableMethods / EnableMethods
dm="<DisableMethods xmlns=\"urn:internalvim25\"><_this type=\"AuthorizationManager\">$LAB_AUTHZ</_this><entity type=\"VirtualMachine\">$LAB_VM_MOREF</entity><method><method>RelocateVM_Task</method><reasonId>backup</reasonId></method><sourceId>vmdkfs-smoke</sourceId></DisableMethods>"
relocate="<RelocateVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this><spec></spec></RelocateVM_Task>"
lab_soap "$dm"
check "DisableMethods RelocateVM_Task" eval 'status 200 && has DisableMethodsResponse'
lab_props VirtualMachine "$LAB_VM_MOREF" disabledMethod
check "disabledMethod lists RelocateVM_Task" has '<string>RelocateVM_Task</string>'
lab_soap "$relocate"
check "RelocateVM_Task refused with MethodDisabled (source vmdkfs-smoke)" eval 'fault MethodDisabled && has "<source>vmdkfs-smoke</source>"'
lab_soap "$dm"
check "second DisableMethods gives MethodAlreadyDisabledFault" eval 'fault MethodAlreadyDisabledFault && has "<sourceId>vmdkfs-smoke</sourceId>"'
st=$(lab_ctl state)
check "/lab/state records the disabled method" eval 'echo "$st" | grep -q "\"sourceId\": \"vmdkfs-smoke\""'
lab_soap "<EnableMethods xmlns=\"urn:internalvim25\"><_this type=\"AuthorizationManager\">$LAB_AUTHZ</_this><entity type=\"VirtualMachine\">$LAB_VM_MOREF</entity><method>RelocateVM_Task</method><sourceId>vmdkfs-smoke</sourceId></EnableMethods>"
check "EnableMethods" eval 'status 200 && has EnableMethodsResponse'
lab_soap "$relocate"
check "RelocateVM_Task allowed again" eval 'status 200 && [ "$(lab_task_wait "$(taskref)")" = success ]'

# ---- remove the snapshot: the delta is merged into the base
lab_soap "<RemoveSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachineSnapshot\">$snap</_this><removeChildren>false</removeChildren><consolidate>true</consolidate></RemoveSnapshot_Task>"
check "RemoveSnapshot_Task succeeds" eval 'status 200 && [ "$(lab_task_wait "$(taskref)")" = success ]'
files=$(vm_files)
check "the VM runs on its base disk again" eval '[ "$(echo "$files" | head -1)" = "[$LAB_DATASTORE] $vm/$vm.vmdk" ]'
check "the delta is gone" [ ! -e "$dir/$vm-000001.vmdk" ]
check "the guest write was merged into the base" eval '[ "$(first4 "$dir/$vm-flat.vmdk" 4096)" = abababab ]'
lab_props VirtualMachine "$LAB_VM_MOREF" snapshot
check "the snapshot left the tree" eval '! has "$snap"'

# ---- a chain of snapshots on the second VM: remove the middle one, revert,
# remove a root with a child, remove all
vm2=$(echo "$LAB_VMS" | cut -d' ' -f2)
lab_ctl state >"$work/state.json"
vm2ref=$(sed -n "/\"name\": \"$vm2\"/{n;s/.*\"moref\": \"\\([^\"]*\\)\".*/\\1/p}" "$work/state.json")
d2=$LAB_DATASTORE_DIR/$vm2
snap_create_vm() { # VM-MOREF NAME: prints the snapshot's moref
	lab_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$1</_this><name>$2</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"
	local t
	t=$(taskref)
	[ "$(lab_task_wait "$t")" = success ] && task_result "$t"
}
snap_create() { snap_create_vm "$vm2ref" "$1"; }
snap_op() { # METHOD THIS-TYPE THIS [EXTRA-XML]
	lab_soap "<$1 xmlns=\"urn:vim25\"><_this type=\"$2\">$3</_this>${4:-}</$1>"
	[ "$(lab_task_wait "$(taskref)")" = success ]
}
reads() { # FILE "OFFSET PATTERN"...: qemu-io reads of the chain from FILE
	local f=$1 a=()
	shift
	for p in "$@"; do a+=(-c "read -P ${p#* } ${p% *} 4096"); done
	[ "$(qemu-io -r -f vmdk "${a[@]}" "$f" 2>&1 | grep -c '^read 4096/4096')" = $# ]
}
vm2chain() { lab_props VirtualMachine "$vm2ref" config.hardware.device && grep -o '<fileName>[^<]*</fileName>' "$LAB_RESP" | sed 's:</fileName>::; s:.*/::' | tr '\n' ' '; }
s1=$(snap_create c1)
lab_ctl "write?vm=$vm2&offset=0&length=4096&pattern=0xa1" >/dev/null
s2=$(snap_create c2)
lab_ctl "write?vm=$vm2&offset=8192&length=4096&pattern=0xa2" >/dev/null
s3=$(snap_create c3)
lab_ctl "write?vm=$vm2&offset=16384&length=4096&pattern=0xa3" >/dev/null
check "chain: three snapshots, running on the third delta" \
	eval '[ -n "$s3" ] && [ "$(vm2chain)" = "$vm2-000003.vmdk $vm2-000002.vmdk $vm2-000001.vmdk $vm2.vmdk " ]'
check "chain: remove the middle snapshot" snap_op RemoveSnapshot_Task VirtualMachineSnapshot "$s2" "<removeChildren>false</removeChildren>"
check "chain: its delta was merged into the previous one" \
	eval '[ "$(vm2chain)" = "$vm2-000003.vmdk $vm2-000001.vmdk $vm2.vmdk " ] && [ ! -e "$d2/$vm2-000002.vmdk" ]'
check "chain: data intact through the new chain" reads "$d2/$vm2-000003.vmdk" "0 0xa1" "8192 0xa2" "16384 0xa3" "20480 0x21"
check "chain: the later snapshot's view keeps its data" reads "$d2/$vm2-000001.vmdk" "0 0xa1" "8192 0xa2" "16384 0x21"
pcid=$(grep -a -o '^CID=[0-9a-f]*' "$d2/$vm2-000001.vmdk" | sed 's/.*=//')
ccid=$(grep -a -o 'parentCID=[0-9a-f]*' "$d2/$vm2-000003.vmdk" | sed 's/.*=//')
check "chain: the relinked delta's parentCID matches ($ccid)" eval '[ -n "$pcid" ] && [ "$pcid" = "$ccid" ]'
check "chain: revert to the first snapshot" snap_op RevertToSnapshot_Task VirtualMachineSnapshot "$s1"
check "chain: new running delta on the base, the abandoned one deleted" \
	eval '[ "$(vm2chain)" = "$vm2-000002.vmdk $vm2.vmdk " ] && [ ! -e "$d2/$vm2-000003.vmdk" ] && reads "$d2/$vm2-000002.vmdk" "0 0x21"'
check "chain: remove the (current, root) first snapshot that has a child" \
	snap_op RemoveSnapshot_Task VirtualMachineSnapshot "$s1" "<removeChildren>false</removeChildren>"
lab_props VirtualMachine "$vm2ref" snapshot
check "chain: the child is a root now, no current snapshot" eval 'has "<name>c3</name>" && ! has "<name>c1</name>" && ! has currentSnapshot'
lab_ctl "write?vm=$vm2&offset=4096&length=4096&pattern=0xc1" >/dev/null
check "chain: RemoveAllSnapshots_Task" snap_op RemoveAllSnapshots_Task VirtualMachine "$vm2ref"
check "chain: back on the base disk, no delta left" \
	eval '[ "$(vm2chain)" = "$vm2.vmdk " ] && ! ls "$d2" | grep -q -- "-00000"'
check "chain: the running delta was consolidated into the base" reads "$d2/$vm2.vmdk" "0 0x21" "4096 0xc1" "8192 0x21"

# ---- NFC: tickets, authd, nbd/nbdssl reads of a snapshot's delta link
check "env: LAB_NFC_PORT and the NFC thumbprints" \
	bash -c '[[ $0 =~ ^[0-9]+$ && $1 =~ ^([0-9A-F]{2}:){19}[0-9A-F]{2}$ && $2 =~ ^([0-9A-F]{2}:){31}[0-9A-F]{2}$ ]]' \
	"${LAB_NFC_PORT:-}" "${LAB_NFC_THUMBPRINT_SHA1:-}" "${LAB_NFC_THUMBPRINT_SHA256:-}"
check "env: the NFC certificate is not the SOAP one" [ "$LAB_NFC_THUMBPRINT_SHA256" != "$LAB_THUMBPRINT_SHA256" ]
if command -v openssl >/dev/null 2>&1; then
	fp=$(openssl x509 -in "$LAB_NFC_CERT" -noout -fingerprint -sha1 | sed 's/.*=//')
	check "env: LAB_NFC_THUMBPRINT_SHA1 matches LAB_NFC_CERT" [ "$fp" = "$LAB_NFC_THUMBPRINT_SHA1" ]
fi
lab_soap '<RetrieveInternalContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveInternalContent>'
check "RetrieveInternalContent: the NFC service is nfcService" has '<nfcService type="NfcService">nfcService</nfcService>'
vmhost=$(vm_host "$LAB_VM_MOREF")
check "the VM's runtime.host ($vmhost)" [ -n "$vmhost" ]
# the ticket calls as VDDK makes them: urn:vim25, with hostForAccess
hfa="<hostForAccess type=\"HostSystem\">$vmhost</hostForAccess>"
lab_soap "<NfcRandomAccessOpenReadonly xmlns=\"urn:vim25\"><_this type=\"NfcService\">nfcService</_this><vm type=\"VirtualMachine\">$LAB_VM_MOREF</vm><diskDeviceKey>2000</diskDeviceKey>$hfa</NfcRandomAccessOpenReadonly>"
check "NfcRandomAccessOpenReadonly: a HostServiceTicket (host, port, SHA-1 thumbprint, vpxa-nfc, 1.0, sessionId)" \
	eval 'status 200 && has "<returnval><host>127.0.0.1</host><port>$LAB_NFC_PORT</port><sslThumbprint>$LAB_NFC_THUMBPRINT_SHA1</sslThumbprint><service>vpxa-nfc</service><serviceVersion>1.0</serviceVersion><sessionId>52"'
lab_soap "<NfcRandomAccessOpenDisk xmlns=\"urn:vim25\"><_this type=\"NfcService\">nfcService</_this><vm type=\"VirtualMachine\">$LAB_VM_MOREF</vm><diskDeviceKey>2000</diskDeviceKey>$hfa</NfcRandomAccessOpenDisk>"
check "NfcRandomAccessOpenDisk on a powered-on VM: InvalidPowerState" fault InvalidPowerState
lab_soap "<NfcRandomAccessOpenReadonly xmlns=\"urn:vim25\"><_this type=\"NfcService\">nfcService</_this><vm type=\"VirtualMachine\">$LAB_VM_MOREF</vm><diskDeviceKey>2999</diskDeviceKey>$hfa</NfcRandomAccessOpenReadonly>"
check "a disk key the VM does not have: InvalidArgument" fault InvalidArgument
n1=$(snap_create_vm "$LAB_VM_MOREF" nfc1)
lab_ctl "write?vm=$vm&disk=0&offset=4096&length=8192&pattern=0xab" >/dev/null
n2=$(snap_create_vm "$LAB_VM_MOREF" nfc2)
lab_ctl "write?vm=$vm&disk=0&offset=0&length=8192&pattern=0xcd" >/dev/null
link=$(ns "[x for v in s['vms'] for x in v['snapshots'] if x['moref']=='$n2'][0]['disks'][0]['chain'][0]")
nlocal=$(ns "[x for v in s['vms'] for x in v['snapshots'] if x['moref']=='$n2'][0]['disks'][0]['local_chain'][0]")
check "NFC: snapshot nfc2's disk is the delta $vm-000001.vmdk" [ "$link" = "[$LAB_DATASTORE] $vm/$vm-000001.vmdk" ]
nfc_check NFC "$LAB_VM_MOREF" "$link" "$nlocal"
nfc --vm "$LAB_VM_MOREF" --path "[$LAB_DATASTORE] $vm2/$vm2.vmdk" --expect-open-error 11
check "NFC: another VM's disk: ERROR 11 permission check failed" \
	eval '[ "$(nj "j[\"open_error\"][\"text\"]")" = "permission check failed" ] || { nfc_show; false; }'
nfc --vm "$LAB_VM_MOREF" --path "[$LAB_DATASTORE] $vm/$vm-000002.vmdk" --expect-open-error 15
check "NFC: the running link of a powered-on VM is locked" eval 'nj "j[\"open_error\"][\"text\"]" | grep -q multiwriter || { nfc_show; false; }'
snap_op PowerOffVM_Task VirtualMachine "$vm2ref"
chg2=$(ns "[d['change_id'] for v in s['vms'] if v['name']=='$vm2' for d in v['disks']][0]")
lab_ctl "nfc/log?clear=1" >/dev/null
nfc --rw --vm "$vm2ref" --path "[$LAB_DATASTORE] $vm2/$vm2.vmdk" --write 0x100000:0x10200:0x5a --no-read
check "NFC read-write (powered-off VM): a write of two fragments, one acknowledgement" \
	eval '[ "$(nj "j[\"flags\"]")" = 26 ] || { nfc_show; false; }'
check "NFC read-write: the data is in the disk file" reads "$d2/$vm2.vmdk" "1048576 0x5a" "1110528 0x5a" "1114624 0x00" "0 0x21"
check "NFC read-write: the disk's changeId moved on" \
	eval '[ -n "$chg2" ] && [ "$(ns "[d[\"change_id\"] for v in s[\"vms\"] if v[\"name\"]==\"$vm2\" for d in v[\"disks\"]][0]")" != "$chg2" ]'
check "NFC read-write: /lab/nfc/log: the write's fragments (one opId) and the ticket call conform" nlog_conforms aio.write
lab_ctl "nfc?ack_len36=1" >/dev/null
timeout 60 /usr/bin/python3 "$here/nfc_client.py" --env "$LAB_DIR/lab.env" --rw --vm "$vm2ref" \
	--path "[$LAB_DATASTORE] $vm2/$vm2.vmdk" --write 0x200000:0x1000:0x6b --no-read >"$work/nfc.json" 2>&1
check "ack_len36=1: the length at [36] of the acknowledgement does not make nfc_client.py wait for data" \
	eval '[ "$(nj "\"fail\" not in j")" = True ] && reads "$d2/$vm2.vmdk" "2097152 0x6b" || { nfc_show; false; }'
check "ack_len36=1 shows in the knobs; reset=1 clears it" \
	eval 'lab_ctl nfc | grep -q "\"ack_len36\": true" && lab_ctl "nfc?reset=1" | grep -q "\"ack_len36\": false"'
snap_op PowerOnVM_Task VirtualMachine "$vm2ref"
check "/lab/state counts NFC connections, opens, reads and bytes" \
	eval '[ "$(ns "(lambda n: n[\"connections\"] >= 8 and n[\"opens\"] >= 6 and n[\"reads\"] >= 48 and n[\"bytes_read\"] >= 48 << 20 and n[\"writes\"] == 2)(s[\"nfc\"][\"stats\"])")" = True ]'
vmfs_check VMFS "$LAB_VM_MOREF" "$link" "$nlocal"
check "NFC: remove the snapshots" snap_op RemoveAllSnapshots_Task VirtualMachine "$LAB_VM_MOREF"

# ---- result paging
paging_check paging

# ---- injected faults, delays, drops
lab_ctl "fault?method=RetrievePropertiesEx&fault=SystemError&count=1" >/dev/null
lab_props VirtualMachine "$LAB_VM_MOREF" name
check "injected SystemError on the next RetrievePropertiesEx" fault SystemError
lab_props VirtualMachine "$LAB_VM_MOREF" name
check "... only once" eval 'status 200 && has "<val xsi:type=\"xsd:string\">$vm</val>"'
lab_ctl "delay?method=RetrievePropertiesEx&ms=700&count=1" >/dev/null
t0=$(date +%s%N)
lab_props VirtualMachine "$LAB_VM_MOREF" name
t1=$(date +%s%N)
check "injected delay of 700 ms" [ $(((t1 - t0) / 1000000)) -ge 650 ]
lab_ctl "drop?count=1" >/dev/null
rc=0
curl -sS --cacert "$LAB_CERT" -o /dev/null --max-time 10 -d x "$LAB_URL" 2>/dev/null || rc=$?
check "dropped connection: curl gets an empty reply (exit 52)" [ "$rc" = 52 ]
lab_props VirtualMachine "$LAB_VM_MOREF" name
check "... only once" status 200
lab_ctl "drop?when=accept&count=1" >/dev/null
rc=0
curl -sS --cacert "$LAB_CERT" -o /dev/null --max-time 10 -d x "$LAB_URL" 2>/dev/null || rc=$?
check "connection dropped at accept: the TLS handshake fails (curl exit 35)" [ "$rc" = 35 ]
lab_ctl "fault?method=*&http=503&count=1" >/dev/null
lab_props VirtualMachine "$LAB_VM_MOREF" name
check "injected HTTP 503" status 503

# ---- session expiry
lab_ctl expire >/dev/null
lab_props VirtualMachine "$LAB_VM_MOREF" name
check "/lab/expire: the old cookie gets NotAuthenticated" fault NotAuthenticated
check "/lab/state: no session left" eval 'lab_ctl state | grep -q "\"sessions\": 0"'
lab_login
lab_ctl "idle?ms=300" >/dev/null
sleep 0.8
lab_props VirtualMachine "$LAB_VM_MOREF" name
check "idle timeout: NotAuthenticated after 300 ms idle" fault NotAuthenticated
lab_ctl reset >/dev/null
check "no panic in the lab's log" eval '! grep -q -e panic -e "DATA RACE" "$LAB_DIR/lab.log"'
lab_stop

# ---------------------------------------------------------------- ESXi
lab_start "$work/esx" -esx || { echo "FAIL: the ESXi lab did not start"; exit 1; }
echo "# ESXi lab at $LAB_URL"
lab_service_content
check "ESXi: apiType HostAgent" has '<apiType>HostAgent</apiType>'
lab_login
check "ESXi: Login as $LAB_USER" status 200
lab_soap "<DisableMethods xmlns=\"urn:internalvim25\"><_this type=\"AuthorizationManager\">$LAB_AUTHZ</_this><entity type=\"VirtualMachine\">$LAB_VM_MOREF</entity><method><method>RelocateVM_Task</method></method><sourceId>vmdkfs-smoke</sourceId></DisableMethods>"
check "ESXi: DisableMethods fails: HostAgent is not a VirtualCenter, cannot disable sVmotion" \
	eval 'status 500 && has "<faultstring>HostAgent is not a VirtualCenter, cannot disable sVmotion</faultstring>"'
lab_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this><name>esx</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"
check "ESXi: CreateSnapshot_Task succeeds" eval 'status 200 && [ "$(lab_task_wait "$(taskref)")" = success ]'
check "ESXi: the delta exists" [ -f "$LAB_DATASTORE_DIR/$LAB_VM/$LAB_VM-000001.vmdk" ]
lab_soap '<RetrieveInternalContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveInternalContent>'
check "ESXi: the NFC service is ha-nfc-service" has '<nfcService type="NfcService">ha-nfc-service</nfcService>'
lab_ctl "nfc/log?clear=1" >/dev/null
nfc --ssl --vm "$LAB_VM_MOREF" --path "[$LAB_DATASTORE] $LAB_VM/$LAB_VM.vmdk" --out "$work/nfc-esx.raw"
r=$(nj "'host' not in j['ticket'] and j['ticket']['service'] == 'nfc' and j['ticket']['nfcService'] == 'ha-nfc-service' and j.get('fragments') == 256")
check "ESXi: NFC ticket without host, service nfc; nbdssl read of the snapshot's base disk" eval '[ "$r" = True ] || { nfc_show; false; }'
qemu-img convert -f vmdk -O raw "$LAB_DATASTORE_DIR/$LAB_VM/$LAB_VM.vmdk" "$work/nfc-qemu.raw"
check "ESXi: NFC data = qemu-img's" cmp -s "$work/nfc-esx.raw" "$work/nfc-qemu.raw"
check "ESXi: /lab/nfc/log: the nbdssl session conforms (PROXY nfcssl)" \
	eval 'nlog_conforms aio.read && grep -q "\"line\": \"PROXY nfcssl\"" "$work/nfclog.json"' 
paging_check "ESXi: paging"
vmfs_check "ESXi: VMFS" "$LAB_VM_MOREF" "[$LAB_DATASTORE] $LAB_VM/$LAB_VM.vmdk" "$LAB_DATASTORE_DIR/$LAB_VM/$LAB_VM.vmdk"
check "ESXi: no panic in the lab's log" eval '! grep -q -e panic -e "DATA RACE" "$LAB_DIR/lab.log"'
lab_stop

echo "$pass passed, $failn failed"
[ "$failn" = 0 ]
