package main

// Changed Block Tracking: VirtualMachine.QueryChangedDiskAreas and the
// /lab/cbt control endpoint.
//
// SIMULATED throughout: vcsim 0.24 has no QueryChangedDiskAreas.  The lab
// answers it from the real files of the disk's chain:
//
//   - each snapshot freezes the disk's backing with its changeId (the lab's
//     CreateSnapshot_Task gives the new running delta bumpChangeID of it,
//     /lab/write bumps it again): a changeId that a link of the snapshot's
//     chain carries names the moment that link was frozen;
//   - "changed since C" = the areas allocated in the links above the link
//     that carries C (qemu-img map of each such link, its own clusters:
//     depth 0), i.e. exactly what was written between the two snapshots;
//   - "*" = the areas in use: the chain's allocated, non-zero areas (qemu-img
//     map of the top: present and not zero; a thin base flat file's holes
//     are zero);
//   - areas are rounded out to 64 KiB granules and merged, as ESXi 8 was
//     recorded doing (hystax/OpenVixDiskLib docs/cbt.md: a one-sector
//     write at sector 7777 came back as start=3932160 length=65536; a 4 MiB
//     write as one 4160 KiB extent; "*" on a fresh thin 10 GiB disk gave
//     only its allocated 1 MiB, with length = the whole capacity);
//   - one answer covers startOffset to the end of the disk (as recorded);
//     /lab/cbt?window=BYTES makes the lab answer in windows instead, as
//     vSphere may (its reference says: call again from startOffset+length).
//
// GUESS (no record of the faults): CBT off, a reset or unknown change id,
// and an independent or RDM disk all answer FileFault (file = the disk's
// top link) with a faultstring that says why; a device key that is no
// disk, InvalidArgument deviceKey; startOffset outside the disk,
// InvalidArgument startOffset.

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const cbtGranule = 64 << 10

var cbt = struct {
	mu     sync.Mutex
	window int64  // bytes per answer, 0: to the end of the disk
	bad    string // "outside": answers with an area past the end (until bad=none)
	// valid change id prefixes (before '/') per "vm/deviceKey"; a disk
	// not listed takes the prefix of its running backing.
	epoch map[string]string
}{epoch: map[string]string{}}

type cbtArea struct{ Start, Length int64 }

// cbtMap runs qemu-img map on a link (its chain read-only, shared lock).
func cbtMap(local string) ([]map[string]interface{}, error) {
	out, err := exec.Command("qemu-img", "map", "-U", "--output=json", "-f", "vmdk", local).Output()
	if err != nil {
		return nil, fmt.Errorf("qemu-img map %s: %v", local, err)
	}
	var m []map[string]interface{}
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func num(v interface{}) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// roundMerge rounds areas out to granules, clips to capacity, sorts and
// merges them.
func roundMerge(in []cbtArea, capacity int64) []cbtArea {
	var a []cbtArea
	for _, x := range in {
		s := x.Start / cbtGranule * cbtGranule
		e := (x.Start + x.Length + cbtGranule - 1) / cbtGranule * cbtGranule
		if e > capacity {
			e = capacity
		}
		if e > s {
			a = append(a, cbtArea{s, e - s})
		}
	}
	sort.Slice(a, func(i, j int) bool { return a[i].Start < a[j].Start })
	var out []cbtArea
	for _, x := range a {
		if n := len(out); n > 0 && x.Start <= out[n-1].Start+out[n-1].Length {
			if end := x.Start + x.Length; end > out[n-1].Start+out[n-1].Length {
				out[n-1].Length = end - out[n-1].Start
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

func idPrefix(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[:i]
	}
	return id
}

// changedAreas computes the answer for the whole disk.
func (l *Lab) changedAreas(b *backing, changeID string, capacity int64) ([]cbtArea, error) {
	var raw []cbtArea
	if changeID == "*" {
		m, err := cbtMap(l.localPath(b.FileName))
		if err != nil {
			return nil, err
		}
		for _, e := range m {
			if e["present"] == true && e["zero"] != true {
				raw = append(raw, cbtArea{num(e["start"]), num(e["length"])})
			}
		}
		return roundMerge(raw, capacity), nil
	}
	var above []*backing
	n := b
	for ; n != nil && n.ChangeId != changeID; n = n.Parent {
		above = append(above, n)
	}
	if n == nil {
		return nil, fmt.Errorf("change id %q is not one of this disk's", changeID)
	}
	for _, link := range above {
		m, err := cbtMap(l.localPath(link.FileName))
		if err != nil {
			return nil, err
		}
		for _, e := range m {
			if num(e["depth"]) == 0 && e["present"] == true {
				raw = append(raw, cbtArea{num(e["start"]), num(e["length"])})
			}
		}
	}
	return roundMerge(raw, capacity), nil
}

func cbtFileFault(w http.ResponseWriter, file, msg string) {
	writeFault(w, msg, &types.FileFault{File: file})
}

func (l *Lab) queryChangedDiskAreas(w http.ResponseWriter, body []byte, this types.ManagedObjectReference) {
	m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	v := l.byRef[this]
	if err != nil || v == nil {
		f, _ := newFault("ManagedObjectNotFound", "", this)
		writeFault(w, "The object has already been deleted or has not been completely created", f)
		return
	}
	req := m.Body.(*types.QueryChangedDiskAreas)
	v.mu.Lock()
	defer v.mu.Unlock()
	var cfg types.VirtualMachineConfigInfo
	var enabled bool
	simulator.Map.WithLock(v.obj, func() {
		cfg = deepCopy(*v.obj.Config)
		enabled = v.obj.Config.ChangeTrackingEnabled != nil && *v.obj.Config.ChangeTrackingEnabled
	})
	if req.Snapshot != nil {
		s := snapshotObj(*req.Snapshot)
		if s == nil {
			f, _ := newFault("ManagedObjectNotFound", "", *req.Snapshot)
			writeFault(w, "The object has already been deleted or has not been completely created", f)
			return
		}
		simulator.Map.WithLock(s, func() { cfg = deepCopy(s.Config) })
	}
	var disk *types.VirtualDisk
	for _, d := range vmDisks(&cfg) {
		if d.Key == req.DeviceKey {
			disk = d
		}
	}
	if disk == nil {
		writeFault(w, "A specified parameter was not correct: deviceKey", &types.InvalidArgument{InvalidProperty: "deviceKey"})
		return
	}
	b := flatBacking(disk)
	if b == nil {
		file := ""
		if fb, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
			file = fb.GetVirtualDeviceFileBackingInfo().FileName
		}
		cbtFileFault(w, file, "Error caused by file "+file+": changed block tracking is not supported on raw device mappings")
		return
	}
	if !enabled {
		cbtFileFault(w, b.FileName, "Error caused by file "+b.FileName+": changed block tracking is not enabled on the virtual machine")
		return
	}
	if strings.HasPrefix(b.DiskMode, "independent") {
		cbtFileFault(w, b.FileName, "Error caused by file "+b.FileName+": changed block tracking is not supported on independent disks")
		return
	}
	capacity := disk.CapacityInBytes
	if capacity == 0 {
		capacity = disk.CapacityInKB * 1024
	}
	if req.StartOffset < 0 || req.StartOffset >= capacity {
		writeFault(w, "A specified parameter was not correct: startOffset", &types.InvalidArgument{InvalidProperty: "startOffset"})
		return
	}
	key := fmt.Sprintf("%s/%d", this.Value, req.DeviceKey)
	cbt.mu.Lock()
	valid, reset := cbt.epoch[key]
	window, badKnob := cbt.window, cbt.bad
	cbt.mu.Unlock()
	if !reset {
		valid = idPrefix(b.ChangeId)
	}
	if req.ChangeId != "*" && idPrefix(req.ChangeId) != valid {
		cbtFileFault(w, b.FileName, "Error caused by file "+b.FileName+": the change id is no longer valid (change tracking was reset)")
		return
	}
	areas, err := l.changedAreas(b, req.ChangeId, capacity)
	if err != nil {
		cbtFileFault(w, b.FileName, "Error caused by file "+b.FileName+": "+err.Error())
		return
	}
	length := capacity - req.StartOffset
	if window > 0 && window < length {
		length = window
	}
	end := req.StartOffset + length
	var sb strings.Builder
	fmt.Fprintf(&sb, `<QueryChangedDiskAreasResponse xmlns="urn:vim25"><returnval><startOffset>%d</startOffset><length>%d</length>`, req.StartOffset, length)
	for _, a := range areas {
		s, e := a.Start, a.Start+a.Length
		if s < req.StartOffset {
			s = req.StartOffset
		}
		if e > end {
			e = end
		}
		if e > s {
			fmt.Fprintf(&sb, `<changedArea><start>%d</start><length>%d</length></changedArea>`, s, e-s)
		}
	}
	if badKnob == "outside" {
		fmt.Fprintf(&sb, `<changedArea><start>%d</start><length>%d</length></changedArea>`, capacity-cbtGranule, 2*cbtGranule)
	}
	sb.WriteString(`</returnval></QueryChangedDiskAreasResponse>`)
	writeSOAP(w, http.StatusOK, sb.String())
}

// handleCBT: /lab/cbt?vm=NAME|MOREF[&enabled=0|1][&reset=1]
// [&disk=KEY&mode=DISKMODE] [&window=BYTES] [&bad=outside|none].
//
// SIMULATED: enabled= sets config.changeTrackingEnabled (as ReconfigVM_Task
// with changeTrackingEnabled would); turning it on again after off, and
// reset=1, start a new tracking epoch: every disk's running changeId gets a
// new uuid part (sequence 1) and every earlier id is refused, as after a
// CBT reset.  mode= sets a running disk's diskMode (e.g.
// independent_persistent).  window= and bad= are answer knobs for all VMs.
func (l *Lab) handleCBT(w http.ResponseWriter, r *http.Request) {
	if s := r.FormValue("window"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			bad(w, "window=BYTES")
			return
		}
		cbt.mu.Lock()
		cbt.window = n
		cbt.mu.Unlock()
	}
	if s := r.FormValue("bad"); s != "" {
		cbt.mu.Lock()
		cbt.bad = map[string]string{"outside": "outside"}[s]
		cbt.mu.Unlock()
	}
	out := map[string]interface{}{"window": cbt.window}
	if r.FormValue("vm") == "" {
		ok(w, out)
		return
	}
	v := l.findVM(r.FormValue("vm"))
	if v == nil {
		bad(w, "vm=NAME|MOREF: no such VM")
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var was bool
	simulator.Map.WithLock(v.obj, func() {
		was = v.obj.Config.ChangeTrackingEnabled != nil && *v.obj.Config.ChangeTrackingEnabled
	})
	now := was
	if s := r.FormValue("enabled"); s != "" {
		now = s == "1" || s == "true"
		simulator.Map.WithLock(v.obj, func() {
			v.obj.Config.ChangeTrackingEnabled = types.NewBool(now)
		})
	}
	devs := currentDevices(v)
	changed := false
	if r.FormValue("reset") == "1" || (now && !was) {
		for _, d := range vmDisks(&types.VirtualMachineConfigInfo{Hardware: types.VirtualHardware{Device: devs}}) {
			b := flatBacking(d)
			if b == nil {
				continue
			}
			id := changeID(fmt.Sprintf("%s-reset-%d", v.name, rand.Int63()), int(d.Key), 1)
			b.ChangeId = id
			cbt.mu.Lock()
			cbt.epoch[fmt.Sprintf("%s/%d", v.ref.Value, d.Key)] = idPrefix(id)
			cbt.mu.Unlock()
		}
		changed = true
	}
	if mode := r.FormValue("mode"); mode != "" {
		key, _ := intParam(r, "disk", -1)
		for _, d := range vmDisks(&types.VirtualMachineConfigInfo{Hardware: types.VirtualHardware{Device: devs}}) {
			if b := flatBacking(d); b != nil && int64(d.Key) == key {
				b.DiskMode = mode
				changed = true
			}
		}
	}
	if changed {
		setDevices(v, devs)
	}
	var ids []map[string]interface{}
	for _, d := range vmDisks(&types.VirtualMachineConfigInfo{Hardware: types.VirtualHardware{Device: devs}}) {
		if b := flatBacking(d); b != nil {
			ids = append(ids, map[string]interface{}{"key": d.Key, "changeId": b.ChangeId, "diskMode": b.DiskMode})
		}
	}
	out["enabled"] = now
	out["disks"] = ids
	ok(w, out)
}
