package main

// The control endpoint: plain HTTP on its own loopback port (LAB_CONTROL).
// Every endpoint takes query parameters (GET or POST) and answers JSON.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// SIMULATED: fault injection, delays and dropped connections stand in for
// a failing or slow vCenter and a lossy network.
type faultRule struct {
	Method  string `json:"method"`
	Fault   string `json:"fault"`
	Message string `json:"message"`
	HTTP    int    `json:"http,omitempty"`
	Count   int    `json:"count"` // calls left; -1: until cleared
}

type delayRule struct {
	Method string        `json:"method"`
	Delay  time.Duration `json:"-"`
	Ms     int64         `json:"ms"`
	Count  int           `json:"count"`
}

type dropRule struct {
	Method string `json:"method"`
	Count  int    `json:"count"`
	Skip   int    `json:"skip"` // requests (of Method) let through first
	// close: read the request, carry nothing out, close without a reply;
	// after: carry it out, then close without a reply (the answer lost);
	// truncate: carry it out, send half the answer, close;
	// garbage: answer HTTP 200 with a body that is not XML.
	Mode string `json:"mode"`
}

func match(rule, name string) bool { return rule == "*" || rule == name }

func (l *Lab) takeFault(name string) *faultRule {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, f := range l.faults {
		if match(f.Method, name) && f.Count != 0 {
			c := *f
			if f.Count > 0 {
				f.Count--
				if f.Count == 0 {
					l.faults = append(l.faults[:i], l.faults[i+1:]...)
				}
			}
			return &c
		}
	}
	return nil
}

func (l *Lab) takeDelay(name string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	for i := 0; i < len(l.delays); i++ {
		r := l.delays[i]
		if match(r.Method, name) && r.Count != 0 {
			d += r.Delay
			if r.Count > 0 {
				r.Count--
				if r.Count == 0 {
					l.delays = append(l.delays[:i], l.delays[i+1:]...)
					i--
				}
			}
		}
	}
	return d
}

// takeDrop returns the mode of the drop rule that takes this request of
// method name, or "".
func (l *Lab) takeDrop(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, r := range l.drops {
		if match(r.Method, name) && r.Count > 0 {
			if r.Skip > 0 {
				r.Skip--
				continue
			}
			r.Count--
			if r.Count == 0 {
				l.drops = append(l.drops[:i], l.drops[i+1:]...)
			}
			return r.Mode
		}
	}
	return ""
}

func (l *Lab) takeAcceptDrop() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.acceptDr > 0 {
		l.acceptDr--
		return true
	}
	return false
}

func jsonReply(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func bad(w http.ResponseWriter, format string, a ...interface{}) {
	jsonReply(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(format, a...)})
}

func ok(w http.ResponseWriter, extra map[string]interface{}) {
	if extra == nil {
		extra = map[string]interface{}{}
	}
	extra["ok"] = true
	jsonReply(w, http.StatusOK, extra)
}

func intParam(r *http.Request, name string, def int64) (int64, error) {
	s := r.FormValue(name)
	if s == "" {
		return def, nil
	}
	return strconv.ParseInt(s, 0, 64)
}

func (l *Lab) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/lab/state", func(w http.ResponseWriter, r *http.Request) {
		jsonReply(w, http.StatusOK, l.state())
	})
	mux.HandleFunc("/lab/expire", func(w http.ResponseWriter, r *http.Request) {
		n := l.expireAll()
		ok(w, map[string]interface{}{"expired": n})
	})
	mux.HandleFunc("/lab/idle", func(w http.ResponseWriter, r *http.Request) {
		var d time.Duration
		if s := r.FormValue("ms"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				bad(w, "ms: %q", s)
				return
			}
			d = time.Duration(n) * time.Millisecond
		} else {
			f, err := strconv.ParseFloat(r.FormValue("seconds"), 64)
			if err != nil || f < 0 {
				bad(w, "need seconds=N or ms=N")
				return
			}
			d = time.Duration(f * float64(time.Second))
		}
		l.mu.Lock()
		l.idle = d
		l.mu.Unlock()
		ok(w, map[string]interface{}{"idle_ms": d.Milliseconds()})
	})
	mux.HandleFunc("/lab/fault", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("clear") != "" {
			l.mu.Lock()
			l.faults = nil
			l.mu.Unlock()
			ok(w, nil)
			return
		}
		method := r.FormValue("method")
		kind := r.FormValue("fault")
		count, err := intParam(r, "count", 1)
		if err != nil || method == "" {
			bad(w, "need method=NAME (or *), fault=FaultType and/or http=STATUS, count=N (-1: until cleared)")
			return
		}
		status, err := intParam(r, "http", 0)
		if err != nil || (kind == "" && status == 0) {
			bad(w, "need fault=FaultType and/or http=STATUS")
			return
		}
		msg := r.FormValue("message")
		if kind != "" {
			if msg == "" {
				msg = "Fault injected by vmdkfs-lab"
			}
			if _, err := newFault(kind, msg, types.ManagedObjectReference{}); err != nil {
				bad(w, "%v", err)
				return
			}
		}
		l.mu.Lock()
		l.faults = append(l.faults, &faultRule{Method: method, Fault: kind, Message: msg, HTTP: int(status), Count: int(count)})
		l.mu.Unlock()
		ok(w, nil)
	})
	mux.HandleFunc("/lab/delay", func(w http.ResponseWriter, r *http.Request) {
		method := r.FormValue("method")
		ms, err := intParam(r, "ms", -1)
		count, err2 := intParam(r, "count", -1)
		if method == "" || err != nil || err2 != nil || ms < 0 {
			bad(w, "need method=NAME (or *), ms=N (0 clears), count=N (default -1: until cleared)")
			return
		}
		l.mu.Lock()
		kept := l.delays[:0]
		for _, d := range l.delays {
			if d.Method != method {
				kept = append(kept, d)
			}
		}
		l.delays = kept
		if ms > 0 {
			l.delays = append(l.delays, &delayRule{Method: method, Delay: time.Duration(ms) * time.Millisecond, Ms: ms, Count: int(count)})
		}
		l.mu.Unlock()
		ok(w, nil)
	})
	mux.HandleFunc("/lab/drop", func(w http.ResponseWriter, r *http.Request) {
		count, err := intParam(r, "count", 1)
		if err != nil || count < 0 {
			bad(w, "count=N")
			return
		}
		when := r.FormValue("when")
		l.mu.Lock()
		defer l.mu.Unlock()
		switch when {
		case "accept":
			l.acceptDr = int(count)
		case "", "request":
			method := r.FormValue("method")
			if method == "" {
				method = "*"
			}
			skip, err := intParam(r, "skip", 0)
			mode := r.FormValue("mode")
			if mode == "" {
				mode = "close"
			}
			if err != nil || skip < 0 || (mode != "close" && mode != "after" && mode != "truncate" && mode != "garbage") {
				bad(w, "skip=N (requests let through first), mode=close|after|truncate|garbage")
				return
			}
			if count > 0 {
				l.drops = append(l.drops, &dropRule{Method: method, Count: int(count), Skip: int(skip), Mode: mode})
			}
		default:
			bad(w, "when=request|accept")
			return
		}
		ok(w, nil)
	})
	mux.HandleFunc("/lab/page", func(w http.ResponseWriter, r *http.Request) {
		// SIMULATED: vCenter may page RetrievePropertiesEx results even
		// when the client set no maxObjects; this forces a page size.
		n, err := intParam(r, "max", -1)
		if err != nil || n < 0 || n > 1<<30 {
			bad(w, "need max=N (objects per RetrievePropertiesEx result; 0: off)")
			return
		}
		l.mu.Lock()
		l.forcedPage = int(n)
		l.mu.Unlock()
		ok(w, map[string]interface{}{"page_size": n})
	})
	mux.HandleFunc("/lab/reset", func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.faults, l.delays, l.drops, l.acceptDr, l.idle = nil, nil, nil, 0, 0
		l.forcedPage = 0
		if r.FormValue("calls") != "" {
			l.calls = map[string]int{}
			l.callLog = nil
		}
		l.mu.Unlock()
		if l.nfc != nil {
			l.nfc.mu.Lock()
			l.nfc.knobs = defaultNFCKnobs()
			l.nfc.fault, l.nfc.refuse = nfcFault{}, 0
			if r.FormValue("calls") != "" {
				l.nfc.stats = nfcStats{Live: l.nfc.stats.Live}
			}
			l.nfc.mu.Unlock()
		}
		ok(w, nil)
	})
	mux.HandleFunc("/lab/write", l.handleWrite)
	mux.HandleFunc("/lab/nfc", l.handleNFC)
	mux.HandleFunc("/lab/nfc/log", l.handleNFCLog)
	mux.HandleFunc("/lab/vmfs", l.handleVMFS)
	mux.HandleFunc("/lab/cbt", l.handleCBT) // cbt.go
	// the proxy VM and its SCSI disks (hotadd.go)
	mux.HandleFunc("/lab/hotadd", l.handleHotadd)
	return mux
}

// handleWrite writes a byte pattern into a VM's running disk, as the
// guest would: into the running delta when there is a snapshot.
//
// SIMULATED: guest writes (made with qemu-io into the top of the chain).
func (l *Lab) handleWrite(w http.ResponseWriter, r *http.Request) {
	v := l.findVM(r.FormValue("vm"))
	if v == nil {
		bad(w, "vm=NAME|MOREF: no such VM")
		return
	}
	diskArg, err := intParam(r, "disk", 0)
	off, err1 := intParam(r, "offset", -1)
	length, err2 := intParam(r, "length", -1)
	pat, err3 := strconv.ParseUint(strings.TrimPrefix(r.FormValue("pattern"), "0x"), 16, 8)
	if err != nil || err1 != nil || err2 != nil || err3 != nil || off < 0 || length <= 0 {
		bad(w, "need vm=, disk=INDEX|KEY, offset=BYTES, length=BYTES, pattern=0xNN")
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	devs := currentDevices(v)
	var disk *types.VirtualDisk
	for i, d := range vmDisks(&types.VirtualMachineConfigInfo{Hardware: types.VirtualHardware{Device: devs}}) {
		if int64(i) == diskArg || int64(d.Key) == diskArg {
			disk = d
			break
		}
	}
	if disk == nil || flatBacking(disk) == nil {
		bad(w, "disk %d: no such disk", diskArg)
		return
	}
	if off+length > disk.CapacityInBytes {
		bad(w, "offset+length beyond the disk's %d bytes", disk.CapacityInBytes)
		return
	}
	b := flatBacking(disk)
	local := l.localPath(b.FileName)
	if err := run("qemu-io", "-f", "vmdk", "-c", fmt.Sprintf("write -P 0x%02x %d %d", pat, off, length), local); err != nil {
		bad(w, "%v", err)
		return
	}
	if err := normalizeDescriptor(local); err != nil {
		bad(w, "%v", err)
		return
	}
	b.ChangeId = bumpChangeID(b.ChangeId)
	setDevices(v, devs)
	l.mu.Lock()
	l.writes[b.FileName] = append(l.writes[b.FileName], writeRec{Offset: off, Length: length, Pattern: fmt.Sprintf("0x%02x", pat)})
	l.mu.Unlock()
	l.relayout(v)
	ok(w, map[string]interface{}{"file": b.FileName, "changeId": b.ChangeId})
}

func (l *Lab) findVM(s string) *labVM {
	for _, v := range l.vms {
		if v.name == s || v.ref.Value == s {
			return v
		}
	}
	return nil
}

// ---- /lab/state ----

type diskState struct {
	Key        int32    `json:"key"`
	Label      string   `json:"label"`
	File       string   `json:"file"`
	Chain      []string `json:"chain"`       // datastore paths, running first
	LocalChain []string `json:"local_chain"` // the same as local paths
	Capacity   int64    `json:"capacity_bytes"`
	ChangeID   string   `json:"change_id"`
	UUID       string   `json:"uuid"`
}

type snapState struct {
	snapRec
	Parent string      `json:"parent,omitempty"`
	Disks  []diskState `json:"disks"`
}

type vmState struct {
	Name            string           `json:"name"`
	Moref           string           `json:"moref"`
	Dir             string           `json:"dir"`
	PowerState      string           `json:"power_state"`
	Disks           []diskState      `json:"disks"`
	CurrentSnapshot string           `json:"current_snapshot,omitempty"`
	Snapshots       []snapState      `json:"snapshots"`
	DisabledMethods []*disabledEntry `json:"disabled_methods"`
	Files           []string         `json:"files"`
}

func (l *Lab) disksOf(cfg *types.VirtualMachineConfigInfo) []diskState {
	out := []diskState{}
	for _, d := range vmDisks(cfg) {
		b := flatBacking(d)
		if b == nil {
			continue
		}
		ds := diskState{Key: d.Key, File: b.FileName, Chain: chain(b), Capacity: d.CapacityInBytes, ChangeID: b.ChangeId, UUID: b.Uuid}
		if d.DeviceInfo != nil {
			ds.Label = d.DeviceInfo.GetDescription().Label
		}
		for _, f := range ds.Chain {
			ds.LocalChain = append(ds.LocalChain, l.localPath(f))
		}
		out = append(out, ds)
	}
	return out
}

func (l *Lab) state() map[string]interface{} {
	var vms []vmState
	for _, v := range l.vms {
		v.mu.Lock()
		vs := vmState{Name: v.name, Moref: v.ref.Value, Dir: v.dir, Snapshots: []snapState{}, DisabledMethods: []*disabledEntry{}}
		simulator.Map.WithLock(v.obj, func() {
			vs.PowerState = string(v.obj.Runtime.PowerState)
			vs.Disks = l.disksOf(v.obj.Config)
			if v.obj.Snapshot != nil && v.obj.Snapshot.CurrentSnapshot != nil {
				vs.CurrentSnapshot = v.obj.Snapshot.CurrentSnapshot.Value
			}
		})
		parents := map[string]string{}
		var walk func([]types.VirtualMachineSnapshotTree, string)
		walk = func(t []types.VirtualMachineSnapshotTree, parent string) {
			for _, s := range t {
				parents[s.Snapshot.Value] = parent
				walk(s.ChildSnapshotList, s.Snapshot.Value)
			}
		}
		simulator.Map.WithLock(v.obj, func() {
			if v.obj.Snapshot != nil {
				walk(v.obj.Snapshot.RootSnapshotList, "")
			}
		})
		for _, ref := range snapshotRefs(v.obj) {
			s := snapshotObj(ref)
			if s == nil {
				continue
			}
			ss := snapState{Parent: parents[ref.Value]}
			if r := v.snaps[ref.Value]; r != nil {
				ss.snapRec = *r
			} else {
				ss.Ref = ref.Value
			}
			simulator.Map.WithLock(s, func() { ss.Disks = l.disksOf(&s.Config) })
			vs.Snapshots = append(vs.Snapshots, ss)
		}
		if ents, err := os.ReadDir(v.dir); err == nil {
			for _, e := range ents {
				vs.Files = append(vs.Files, e.Name())
			}
		}
		v.mu.Unlock()
		l.mu.Lock()
		for _, e := range l.disabled {
			if e.Entity == v.ref {
				vs.DisabledMethods = append(vs.DisabledMethods, e)
			}
		}
		l.mu.Unlock()
		vms = append(vms, vs)
	}

	var nfc map[string]interface{}
	if l.nfc != nil {
		nfc = l.nfc.state()
	}
	sessions := l.sessionList()
	var sess []map[string]interface{}
	for _, s := range sessions {
		sess = append(sess, map[string]interface{}{"user": s.UserName, "last_active": s.LastActiveTime, "login": s.LoginTime})
	}
	sort.Slice(sess, func(i, j int) bool { return fmt.Sprint(sess[i]["login"]) < fmt.Sprint(sess[j]["login"]) })
	vmfs := l.vmfsState()

	l.mu.Lock()
	defer l.mu.Unlock()
	writes := map[string][]writeRec{}
	for k, v := range l.writes {
		writes[k] = v
	}
	paged := []*pagedResult{}
	for _, p := range l.paged {
		paged = append(paged, p)
	}
	sort.Slice(paged, func(i, j int) bool { return paged[i].Time.Before(paged[j].Time) })
	calls := map[string]int{}
	for _, k := range sortedKeys(l.calls) {
		calls[k] = l.calls[k]
	}
	return map[string]interface{}{
		"mode":             map[bool]string{true: "esx", false: "vpx"}[l.esx],
		"url":              l.sdkURL,
		"control":          l.controlURL,
		"datacenter":       l.dcName,
		"datastore":        l.dsName,
		"datastore_dir":    l.dsDir,
		"cert":             l.certFile,
		"vms":              vms,
		"disabled_methods": append([]*disabledEntry{}, l.disabled...),
		"sessions":         len(sessions),
		"session_list":     sess,
		"idle_timeout_ms":  l.idle.Milliseconds(),
		"faults":           append([]*faultRule{}, l.faults...),
		"delays":           append([]*delayRule{}, l.delays...),
		"drops":            append([]*dropRule{}, l.drops...),
		"accept_drops":     l.acceptDr,
		"page_size":        l.forcedPage,
		"paged_results":    paged,
		"calls":            calls,
		"call_log":         append([]string{}, l.callLog...),
		"writes":           writes,
		"nfc":              nfc,
		"vmfs":             vmfs,
		"hotadd":           hot.state(), // hotadd.go
	}
}
