package main

// SIMULATED: the SOAP side of NFC (RetrieveInternalContent, the
// NfcService's ticket methods) and the /lab/nfc control endpoint.

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// nfcServiceRef is the NFC service's moref: nfcService on vCenter,
// ha-nfc-service on ESXi (vcsim says "NfcService" on both).
func (l *Lab) nfcServiceRef() types.ManagedObjectReference {
	if l.esx {
		return types.ManagedObjectReference{Type: "NfcService", Value: "ha-nfc-service"}
	}
	return types.ManagedObjectReference{Type: "NfcService", Value: "nfcService"}
}

// retrieveInternalContent answers RetrieveInternalContent (no session
// needed) as vcsim does, with the NFC service's moref.  VDDK calls it in
// urn:vim25 (OpenVixDiskLib openvixdisklib/nfc_auth.py, _nfc_service_moid);
// another namespace is taken when strict mode is off.
func (l *Lab) retrieveInternalContent(w http.ResponseWriter) {
	ref := l.nfcServiceRef()
	writeSOAP(w, http.StatusOK, fmt.Sprintf(`<RetrieveInternalContentResponse xmlns="urn:vim25"><returnval><nfcService type="%s">%s</nfcService></returnval></RetrieveInternalContentResponse>`,
		ref.Type, xmlEscape(ref.Value)))
}

type nfcTicketRequest struct {
	This          morXML  `xml:"_this"`
	VM            morXML  `xml:"vm"`
	DiskDeviceKey string  `xml:"diskDeviceKey"`
	HostForAccess *morXML `xml:"hostForAccess"`
}

func notFound(w http.ResponseWriter, ref types.ManagedObjectReference) {
	writeFault(w, fmt.Sprintf("The object '%s:%s' has already been deleted or has not been completely created", ref.Type, ref.Value),
		&types.ManagedObjectNotFound{Obj: ref})
}

// nfcTicketCall implements NfcRandomAccessOpenReadonly(vm, diskDeviceKey,
// hostForAccess?), NfcRandomAccessOpenDisk (the same, read-write) and
// NfcGetVmFiles(vm) (read-only, any link of any disk of the VM: VDDK's
// read-only open).  VDDK calls them in urn:vim25, the first two with
// hostForAccess the VM's runtime.host, NfcGetVmFiles with vm alone
// (OpenVixDiskLib docs/nfc_auth.md, "Stage 2: NFC ticket": "No disk path,
// snapshot, or host is in this request"); strict mode (nfc_conform.go,
// the "soap" rows of nfc_records.json) refuses anything else; with strict
// off any namespace is taken (urn:vim25, urn:internalvim25, urn:nfc),
// hostForAccess is optional (checked to exist when given), and
// NfcGetVmFiles ignores a diskDeviceKey.  The answer is a
// HostServiceTicket: host (not on ESXi), port, sslThumbprint (SHA-1 of the
// NFC certificate), service (vpxa-nfc via vCenter, nfc on ESXi),
// serviceVersion 1.0, sessionId (single use, expires unused after 60 s).
//
// GUESS: faults.  A VM powered on (or suspended) gets InvalidPowerState
// from NfcRandomAccessOpenDisk (alternative: FileLocked); a disk key the
// VM does not have gets InvalidArgument (diskDeviceKey).
func (l *Lab) nfcTicketCall(w http.ResponseWriter, body []byte, method string, this types.ManagedObjectReference) {
	svc := l.nfcServiceRef()
	if this != svc {
		notFound(w, this)
		return
	}
	var req nfcTicketRequest
	if err := decodeMethod(body, method, &req); err != nil {
		writeFault(w, "decoding "+method+": "+err.Error(), &types.InvalidRequest{})
		return
	}
	vmRef := types.ManagedObjectReference{Type: req.VM.Type, Value: strings.TrimSpace(req.VM.Value)}
	if vmRef.Type == "" {
		vmRef.Type = "VirtualMachine"
	}
	v := l.byRef[vmRef]
	if strings.TrimSpace(req.VM.Value) == "" {
		writeFault(w, "A specified parameter was not correct: vm", &types.InvalidArgument{InvalidProperty: "vm"})
		return
	}
	if v == nil {
		notFound(w, vmRef)
		return
	}
	if req.HostForAccess != nil && strings.TrimSpace(req.HostForAccess.Value) != "" {
		href := types.ManagedObjectReference{Type: req.HostForAccess.Type, Value: strings.TrimSpace(req.HostForAccess.Value)}
		if href.Type == "" {
			href.Type = "HostSystem"
		}
		if _, ok := simulator.Map.Get(href).(*simulator.HostSystem); !ok {
			notFound(w, href)
			return
		}
	}
	t := &nfcTicket{VM: v.ref.Value, DiskKey: -1, Method: method, v: v, Service: "vpxa-nfc"}
	if l.esx {
		t.Service = "nfc"
	}
	if method != "NfcGetVmFiles" {
		key, err := strconv.ParseInt(strings.TrimSpace(req.DiskDeviceKey), 10, 32)
		if err != nil {
			writeFault(w, "A specified parameter was not correct: diskDeviceKey", &types.InvalidArgument{InvalidProperty: "diskDeviceKey"})
			return
		}
		all, _, power := l.nfcLinks(v, int32(key))
		if len(all) == 0 {
			writeFault(w, "A specified parameter was not correct: diskDeviceKey", &types.InvalidArgument{InvalidProperty: "diskDeviceKey"})
			return
		}
		t.DiskKey = int32(key)
		if method == "NfcRandomAccessOpenDisk" {
			t.RW = true
			if power != types.VirtualMachinePowerStatePoweredOff {
				state := "Powered on"
				if power == types.VirtualMachinePowerStateSuspended {
					state = "Suspended"
				}
				writeFault(w, fmt.Sprintf("The attempted operation cannot be performed in the current state (%s).", state),
					&types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: power})
				return
			}
		}
	}
	l.nfc.issue(t)
	host := ""
	if !l.esx {
		host = "<host>" + xmlEscape(l.nfc.host) + "</host>"
	}
	writeSOAP(w, http.StatusOK, fmt.Sprintf(`<%sResponse xmlns="urn:vim25"><returnval>%s<port>%d</port><sslThumbprint>%s</sslThumbprint>`+
		`<service>%s</service><serviceVersion>1.0</serviceVersion><sessionId>%s</sessionId></returnval></%sResponse>`,
		method, host, l.nfc.port, l.nfc.sha1, t.Service, t.ID, method))
}

// handleNFC is /lab/nfc: fault injection on the NFC path.
func (l *Lab) handleNFC(w http.ResponseWriter, r *http.Request) {
	s := l.nfc
	k := s.knob()
	if r.FormValue("reset") != "" {
		k = defaultNFCKnobs()
	}
	ints := []struct {
		name string
		dst  *int64
		min  int64
	}{{"cut", &k.Cut, -1}, {"delay_ms", &k.DelayMs, 0}, {"max_io", &k.MaxIO, 512}, {"ticket_ttl_ms", &k.TicketTTLms, 0}, {"stall_ms", &k.StallMs, 0}}
	for _, p := range ints {
		if r.FormValue(p.name) == "" {
			continue
		}
		n, err := intParam(r, p.name, 0)
		if err != nil || n < p.min {
			bad(w, "%s: need an integer >= %d", p.name, p.min)
			return
		}
		*p.dst = n
	}
	if e := r.FormValue("error"); e != "" {
		code, err := strconv.ParseUint(e, 0, 64)
		count, err2 := intParam(r, "count", 1)
		if err != nil || err2 != nil || count < -1 {
			bad(w, "error=CODE [text=TEXT] [count=N (default 1, -1: until cleared, 0: clear)]")
			return
		}
		k.ErrCode, k.ErrCount, k.ErrText = code, int(count), r.FormValue("text")
		if k.ErrText == "" {
			k.ErrText = "Error injected by vmdkfs-lab"
		}
	}
	if v := r.FormValue("stall_writes"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < -1 {
			bad(w, "stall_writes=N (IO writes at which to stop reading; -1: until cleared, 0: clear)")
			return
		}
		k.StallWrites = n
	}
	bools := []struct {
		name string
		dst  *bool
	}{{"wrong_thumbprint", &k.WrongThumbprint}, {"shuffle", &k.Shuffle},
		{"stall_banner", &k.StallBanner}, {"stall_close", &k.StallClose},
		{"strict", &k.Strict}, {"ack_len36", &k.AckLen36}}
	for _, p := range bools {
		if v := r.FormValue(p.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(w, "%s=0|1", p.name)
				return
			}
			*p.dst = b
		}
	}
	if _, set := r.Form["proxy_reply"]; set {
		k.ProxyReply = r.FormValue("proxy_reply")
	}
	switch v := r.FormValue("params_reply"); v {
	case "":
	case "early", "after_version":
		k.ParamsReply = v
	default:
		bad(w, "params_reply=early|after_version")
		return
	}
	var fault *nfcFault
	if v := r.FormValue("fault"); v != "" {
		at, err := intParam(r, "fault_at", 1)
		conn, err2 := intParam(r, "fault_conn", 1)
		tms, err3 := intParam(r, "trickle_ms", 20)
		switch {
		case v != "close" && v != "stall" && v != "garbage" && v != "trickle" && v != "off":
			bad(w, "fault=close|stall|garbage|trickle|off")
			return
		case err != nil || err2 != nil || err3 != nil || at < 1 || conn < 1 || tms < 0:
			bad(w, "fault=WHAT fault_at=K (the client's K-th message, from 1) [fault_conn=C (the C-th connection from now, default 1)] [trickle_ms=MS]")
			return
		}
		fault = &nfcFault{What: v, At: int(at), Conn: int(conn), TrickleMs: tms}
		if v == "off" {
			fault = &nfcFault{}
		}
	}
	refuse := -1
	if v := r.FormValue("refuse"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad(w, "refuse=N (connections to close at accept)")
			return
		}
		refuse = n
	}
	s.mu.Lock()
	s.knobs = k
	if r.FormValue("reset") != "" {
		s.fault, s.refuse = nfcFault{}, 0
	}
	if fault != nil {
		s.fault = *fault
	}
	if refuse >= 0 {
		s.refuse = refuse
	}
	s.mu.Unlock()
	st := s.state()
	ok(w, map[string]interface{}{"knobs": st["knobs"], "stats": st["stats"], "fault": st["fault"], "refuse": st["refuse"]})
}

// nfcLocked fails a task on VM v with FileLocked while one of its disks is
// open read-write through NFC (CreateSnapshot_Task, RemoveSnapshot_Task,
// RevertToSnapshot_Task, PowerOnVM_Task...).
//
// SIMULATED: a host holds the lock of a disk opened for writing; the lab
// refuses what would change the chain or open the disk under the client.
func (l *Lab) nfcLocked(w http.ResponseWriter, v *labVM, method string) bool {
	f := l.nfc.rwBusy(v)
	if f == "" {
		return false
	}
	l.failTask(w, v.obj, method, &types.FileLocked{FileFault: types.FileFault{File: f}})
	return true
}
