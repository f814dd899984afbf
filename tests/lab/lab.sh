# Shell helpers for tests that use the vmdkfs lab (simulated vCenter/ESXi).
# Source it from bash:  . tests/lab/lab.sh
#
#   lab_build OUTDIR          build OUTDIR/vmdkfs-lab (returns 77 when Go or
#                             govmomi is missing, after printing why)
#   lab_start DIR [ARGS...]   start the lab on DIR, wait for DIR/lab.env and
#                             source it (LAB_URL, LAB_CERT, ...)
#   lab_stop                  stop it (call it from your EXIT trap)
#   lab_soap XML              POST one SOAP call (the Body's content) to
#                             LAB_URL, verifying TLS with LAB_CERT and keeping
#                             the session cookie in LAB_COOKIES; the answer
#                             goes to $LAB_RESP, the HTTP status to $LAB_HTTP
#   lab_ctl PATH?QUERY        call the control endpoint ($LAB_CONTROL/PATH)
#   lab_service_content       RetrieveServiceContent; sets LAB_SM (session
#                             manager), LAB_PC (property collector),
#                             LAB_AUTHZ (authorization manager) morefs
#                             (lab_start calls it)
#   lab_login [USER [PASS]]   Login (default: LAB_USER / LAB_PASSWORD)
#   lab_props TYPE MOREF PATH RetrievePropertiesEx of one property
#   lab_task_wait TASK        wait for a task to end; prints its state
#   lab_xml_escape STRING     escape & < > " for XML text
#   lab_vmfs UUID VERSION DISKNAME PARTITION [DATASTORE]
#                             POST /lab/vmfs: report the datastore (default
#                             LAB_DATASTORE) as VMFS VERSION (5|6) with that
#                             uuid and one extent DISKNAME:PARTITION; the
#                             answer goes to $LAB_DIR/vmfs.json; returns 1
#                             (printing the answer) unless it is ok
#   lab_vmfs_off [DATASTORE]  DELETE /lab/vmfs: back to a local datastore

LAB_TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_PROC_PID=""

lab_build() {
	local rc=0
	"$LAB_TOOLS_DIR/build.sh" "$1" || rc=$?
	case $rc in
	0) LAB_BIN=$1/vmdkfs-lab ;;
	3) return 77 ;;
	*) return 1 ;;
	esac
}

lab_start() {
	local dir=$1 i
	shift
	mkdir -p "$dir"
	rm -f "$dir/lab.env"
	"${LAB_BIN:?lab_build first}" -dir "$dir" "$@" >"$dir/lab.log" 2>&1 &
	LAB_PROC_PID=$!
	for i in $(seq 1 200); do
		[ -f "$dir/lab.env" ] && break
		if ! kill -0 "$LAB_PROC_PID" 2>/dev/null; then
			echo "lab exited early:" >&2
			cat "$dir/lab.log" >&2
			LAB_PROC_PID=""
			return 1
		fi
		sleep 0.05
	done
	[ -f "$dir/lab.env" ] || { echo "lab did not start in 10 s" >&2; cat "$dir/lab.log" >&2; return 1; }
	# shellcheck disable=SC1091
	. "$dir/lab.env"
	LAB_DIR=$dir
	LAB_COOKIES=$dir/cookies.txt
	LAB_RESP=$dir/resp.xml
	rm -f "$LAB_COOKIES"
	lab_service_content
}

# moref of a ServiceContent field in $LAB_RESP
lab_sc_ref() {
	sed -n "s:.*<$1 type=\"[A-Za-z]*\">\([^<]*\)</$1>.*:\1:p" "$LAB_RESP"
}

lab_service_content() {
	lab_soap '<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>'
	[ "$LAB_HTTP" = 200 ] || { echo "RetrieveServiceContent: HTTP $LAB_HTTP" >&2; return 1; }
	LAB_SM=$(lab_sc_ref sessionManager)
	LAB_PC=$(lab_sc_ref propertyCollector)
	LAB_AUTHZ=$(lab_sc_ref authorizationManager)
}

lab_stop() {
	if [ -n "$LAB_PROC_PID" ]; then
		kill "$LAB_PROC_PID" 2>/dev/null || true
		wait "$LAB_PROC_PID" 2>/dev/null || true
		LAB_PROC_PID=""
	fi
}

lab_soap() {
	local ns=urn:vim25/7.0
	case $1 in *urn:internalvim25*) ns=urn:internalvim25/7.0 ;; esac
	LAB_HTTP=$(curl -sS --cacert "$LAB_CERT" -b "$LAB_COOKIES" -c "$LAB_COOKIES" \
		-H 'Content-Type: text/xml; charset=utf-8' -H "SOAPAction: \"$ns\"" \
		-o "$LAB_RESP" -w '%{http_code}' --max-time 30 \
		--data-binary @- "$LAB_URL" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>$1</soapenv:Body></soapenv:Envelope>
EOF
	) || LAB_HTTP=000
}

lab_ctl() {
	curl -sS --max-time 30 "$LAB_CONTROL/$1"
}

lab_xml_escape() {
	local s=$1
	s=${s//&/&amp;}
	s=${s//</&lt;}
	s=${s//>/&gt;}
	s=${s//\"/&quot;}
	printf '%s' "$s"
}

lab_login() {
	local u=${1:-$LAB_USER} p=${2:-$LAB_PASSWORD}
	lab_soap "<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">$LAB_SM</_this><userName>$(lab_xml_escape "$u")</userName><password>$(lab_xml_escape "$p")</password></Login>"
}

lab_props() {
	lab_soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">$LAB_PC</_this><specSet><propSet><type>$1</type><pathSet>$3</pathSet></propSet><objectSet><obj type=\"$1\">$2</obj></objectSet></specSet><options/></RetrievePropertiesEx>"
}

lab_task_wait() {
	local i state
	for i in $(seq 1 100); do
		lab_props Task "$1" info.state
		state=$(sed -n 's:.*type="TaskInfoState">\([a-z]*\)</val>.*:\1:p' "$LAB_RESP")
		case $state in
		success | error)
			echo "$state"
			return 0
			;;
		esac
		sleep 0.05
	done
	echo "timeout"
}

lab_vmfs() {
	local uuid=$1 version=$2 disk=$3 part=$4 ds=${5:-$LAB_DATASTORE}
	curl -sS --max-time 30 -X POST -H 'Content-Type: application/json' \
		-d "{\"datastore\":\"$ds\",\"uuid\":\"$uuid\",\"version\":$version,\"extents\":[{\"diskName\":\"$disk\",\"partition\":$part}],\"blockSizeMb\":1}" \
		-o "$LAB_DIR/vmfs.json" "$LAB_CONTROL/vmfs" || return 1
	grep -q '"ok": true' "$LAB_DIR/vmfs.json" || { cat "$LAB_DIR/vmfs.json" >&2; return 1; }
}

lab_vmfs_off() {
	curl -sS --max-time 30 -X DELETE -o "$LAB_DIR/vmfs.json" "$LAB_CONTROL/vmfs?datastore=${1:-$LAB_DATASTORE}" || return 1
	grep -q '"ok": true' "$LAB_DIR/vmfs.json" || { cat "$LAB_DIR/vmfs.json" >&2; return 1; }
}
