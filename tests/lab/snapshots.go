package main

// Snapshots with real delta disks.
//
// The simulator (vcsim 0.24) keeps the snapshot tree but leaves the disks
// alone: the snapshot's config is a shallow copy of the VM's and the VM
// keeps writing "into" its base disk.  The lab does the disk side around the
// simulator's own methods: it makes the delta files with qemu-img, moves the
// VM's backing, forwards the request to the simulator for the tree and the
// task, then fixes the snapshot's config and the layouts.

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

type backing = types.VirtualDiskFlatVer2BackingInfo

// createDelta makes a child disk of parent in the VM's folder and returns
// the backing for it (parent linked as backing.parent).
//
// SIMULATED: ESXi makes "<disk>-00000N.vmdk" (descriptor) +
// "<disk>-00000N-delta.vmdk" (vmfsSparse) or "-sesparse.vmdk" (SEsparse);
// qemu-img can make neither, so the lab makes a hosted sparse extent
// (createType="monolithicSparse", one file "<disk>-00000N.vmdk") with the
// same parent link: parentCID = the parent's CID, parentFileNameHint = the
// parent's file name relative to the child.  backing.deltaDiskFormat is
// "redoLogFormat" as for vmfsSparse.
func (l *Lab) createDelta(v *labVM, parent *backing) (*backing, error) {
	c := chain(parent)
	baseName := strings.TrimSuffix(path.Base(c[len(c)-1]), ".vmdk")
	parentLocal := l.localPath(parent.FileName)
	var childLocal string
	for n := 1; ; n++ {
		childLocal = filepath.Join(v.dir, fmt.Sprintf("%s-%06d.vmdk", baseName, n))
		if _, err := os.Lstat(childLocal); os.IsNotExist(err) {
			break
		}
	}
	rel, err := filepath.Rel(filepath.Dir(childLocal), parentLocal)
	if err != nil {
		return nil, err
	}
	if err = run("qemu-img", "create", "-q", "-f", "vmdk", "-b", rel, "-F", "vmdk", childLocal); err != nil {
		return nil, err
	}
	err = normalizeDescriptor(childLocal)
	var pt string
	if err == nil {
		pt, err = readDescriptor(parentLocal)
	}
	if err == nil {
		var ct string
		ct, err = readDescriptor(childLocal)
		if err == nil && descValue(ct, "parentCID") != descValue(pt, "CID") {
			err = fmt.Errorf("%s: parentCID %s but parent CID %s", childLocal, descValue(ct, "parentCID"), descValue(pt, "CID"))
		}
	}
	if err != nil {
		_ = os.Remove(childLocal)
		return nil, err
	}
	nb := *parent
	nb.FileName = l.dsPath(childLocal)
	nb.Parent = parent
	nb.DeltaDiskFormat = "redoLogFormat"
	nb.ChangeId = bumpChangeID(parent.ChangeId)
	nb.ContentId = ""
	v.deltas[nb.FileName] = true
	return &nb, nil
}

// setDevices replaces the VM's device list (a property change, so that
// WaitForUpdates sees it).
func setDevices(v *labVM, devs []types.BaseVirtualDevice) {
	simulator.Map.WithLock(v.obj, func() {
		simulator.Map.Update(v.obj, []types.PropertyChange{
			{Name: "config.hardware.device", Val: devs},
		})
	})
}

func currentDevices(v *labVM) []types.BaseVirtualDevice {
	var devs []types.BaseVirtualDevice
	simulator.Map.WithLock(v.obj, func() { devs = deepCopy(v.obj.Config.Hardware.Device) })
	return devs
}

// forwardRecorded passes the request to the simulator and returns its answer
// without sending it yet.
func (l *Lab) forwardRecorded(r *http.Request, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	l.inner.ServeHTTP(rec, withBody(r, body))
	return rec
}

func sendRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

var returnvalRe = regexp.MustCompile(`<returnval[^>]*>([^<]+)</returnval>`)

// recordedTask finds the Task the simulator answered with.
func recordedTask(rec *httptest.ResponseRecorder) *simulator.Task {
	m := returnvalRe.FindSubmatch(rec.Body.Bytes())
	if m == nil {
		return nil
	}
	t, _ := simulator.Map.Get(types.ManagedObjectReference{Type: "Task", Value: string(m[1])}).(*simulator.Task)
	return t
}

func taskOK(t *simulator.Task) bool {
	return t != nil && t.Info.State == types.TaskInfoStateSuccess
}

// failTask answers a *_Task method with a task that failed with fault.
func (l *Lab) failTask(w http.ResponseWriter, entity *simulator.VirtualMachine, method string, fault types.BaseMethodFault) {
	id := strings.TrimSuffix(method, "_Task")
	id = strings.ToLower(id[:1]) + id[1:]
	task := simulator.CreateTask(entity, id, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, fault
	})
	ref := task.Run()
	writeSOAP(w, http.StatusOK, fmt.Sprintf(`<%sResponse xmlns="urn:vim25"><returnval type="Task">%s</returnval></%sResponse>`,
		method, xmlEscape(ref.Value), method))
}

func fileFault(err error) types.BaseMethodFault {
	return &types.SystemError{Reason: err.Error()}
}

// ---- CreateSnapshot_Task ----

// createSnapshot: CreateSnapshot_Task with real delta disks.
//
// SIMULATED: vSphere gives every disk of the VM a new delta whose parent is
// the disk's current file, moves the running disk to the delta (backing
// .parent = the previous backing, recursively) and keeps in the snapshot's
// config the disks as they were (the now read-only parents).  vcsim only
// adds the snapshot to the tree with a shallow copy of the config; the lab
// makes the deltas (createDelta), moves the backings, lets vcsim make the
// snapshot and its task, then gives the snapshot a deep copy of the config
// from before.  memory=true makes no memory file; quiesce is recorded only.

func (l *Lab) createSnapshot(w http.ResponseWriter, r *http.Request, body []byte, v *labVM) {
	m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		sendRecorded(w, l.forwardRecorded(r, body))
		return
	}
	req := m.Body.(*types.CreateSnapshot_Task)

	v.mu.Lock()
	defer v.mu.Unlock()
	if l.nfcLocked(w, v, "CreateSnapshot_Task") {
		return
	}

	var pre types.VirtualMachineConfigInfo
	simulator.Map.WithLock(v.obj, func() { pre = deepCopy(*v.obj.Config) })
	devs := deepCopy(pre.Hardware.Device)
	var made []string
	undo := func() {
		for _, f := range made {
			_ = os.Remove(l.localPath(f))
			delete(v.deltas, f)
		}
	}
	for _, d := range devs {
		disk, ok := d.(*types.VirtualDisk)
		if !ok || flatBacking(disk) == nil || strings.HasPrefix(flatBacking(disk).DiskMode, "independent") {
			continue // independent disks are not part of snapshots
		}
		nb, err := l.createDelta(v, flatBacking(disk))
		if err != nil {
			undo()
			log.Printf("CreateSnapshot_Task %s: %v", v.name, err)
			l.failTask(w, v.obj, "CreateSnapshot_Task", fileFault(err))
			return
		}
		disk.Backing = nb
		made = append(made, nb.FileName)
	}
	setDevices(v, devs)

	rec := l.forwardRecorded(r, body)
	task := recordedTask(rec)
	if !taskOK(task) {
		setDevices(v, deepCopy(pre.Hardware.Device))
		undo()
		sendRecorded(w, rec)
		return
	}
	ref, _ := task.Info.Result.(types.ManagedObjectReference)
	if s := snapshotObj(ref); s != nil {
		// The snapshot shows the disks as they were when it was taken: the
		// files that are now the read-only parents of the new deltas.
		simulator.Map.WithLock(s, func() { s.Config = pre })
	}
	sr := &snapRec{Ref: ref.Value, Name: req.Name, Memory: req.Memory, Quiesce: req.Quiesce, Created: task.Info.QueueTime}
	simulator.Map.WithLock(v.obj, func() {
		for _, sl := range v.obj.LayoutEx.Snapshot {
			if sl.Key == ref {
				for _, f := range v.obj.LayoutEx.File {
					if f.Key == sl.DataKey {
						sr.Vmsn = f.Name
					}
				}
			}
		}
	})
	v.snaps[ref.Value] = sr
	for _, f := range made {
		l.mu.Lock()
		l.writes[f] = []writeRec{}
		l.mu.Unlock()
	}
	l.relayout(v)
	sendRecorded(w, rec)
}

// ---- RemoveSnapshot_Task / RemoveAllSnapshots_Task ----

// referencedFiles lists the disk files used by the VM's running disks and by
// its snapshots (except those in skip).
func referencedFiles(v *labVM, skip map[types.ManagedObjectReference]bool) map[string]bool {
	out := map[string]bool{}
	add := func(cfg *types.VirtualMachineConfigInfo) {
		for _, d := range vmDisks(cfg) {
			for _, f := range chain(flatBacking(d)) {
				out[f] = true
			}
		}
	}
	simulator.Map.WithLock(v.obj, func() { add(v.obj.Config) })
	for _, ref := range snapshotRefs(v.obj) {
		if s := snapshotObj(ref); s != nil && !skip[ref] {
			simulator.Map.WithLock(s, func() { add(&s.Config) })
		}
	}
	return out
}

// postOrder lists the snapshots of a subtree (or of all trees when root is
// nil), children before their parents.
func postOrder(vm *simulator.VirtualMachine, root *types.ManagedObjectReference) []types.ManagedObjectReference {
	var out []types.ManagedObjectReference
	var walk func([]types.VirtualMachineSnapshotTree, bool)
	walk = func(t []types.VirtualMachineSnapshotTree, in bool) {
		for _, s := range t {
			here := in || (root != nil && s.Snapshot == *root)
			walk(s.ChildSnapshotList, here)
			if here || root == nil {
				out = append(out, s.Snapshot)
			}
		}
	}
	if vm.Snapshot != nil {
		walk(vm.Snapshot.RootSnapshotList, false)
	}
	return out
}

// mergeOnce does one consolidation step, if one is due: it finds a disk
// file F that no remaining snapshot has as its file and that is not a
// running disk, with exactly one child delta D made by the lab, and merges
// D into F.  It reports whether it merged something.
//
// SIMULATED: vSphere consolidates when snapshots are deleted.  The lab's
// rule: D is committed into F (qemu-img commit), every disk chain that went
// through D (the VM's running disk, later snapshots) now goes straight to F
// (which keeps its name and takes D's changeId), deltas that had D as
// parent get parentFileNameHint / parentCID rewritten to F, and D is
// deleted once nothing uses it.  A file with several children (a branched
// tree after a revert) is not merged until only one branch is left.
func (l *Lab) mergeOnce(v *labVM, removed map[types.ManagedObjectReference]bool) (bool, error) {
	vmDevs := currentDevices(v)
	var others []*simulator.VirtualMachineSnapshot
	for _, ref := range snapshotRefs(v.obj) {
		if o := snapshotObj(ref); o != nil && !removed[ref] {
			others = append(others, o)
		}
	}
	pinned := map[string]bool{}
	children := map[string]map[string]bool{}
	var files []string
	visit := func(b *backing) {
		if b == nil {
			return
		}
		pinned[b.FileName] = true
		for n := b; n != nil; n = n.Parent {
			if _, seen := children[n.FileName]; !seen {
				children[n.FileName] = map[string]bool{}
				files = append(files, n.FileName)
			}
			if n.Parent != nil {
				if children[n.Parent.FileName] == nil {
					children[n.Parent.FileName] = map[string]bool{}
					files = append(files, n.Parent.FileName)
				}
				children[n.Parent.FileName][n.FileName] = true
			}
		}
	}
	for _, d := range vmDisks(&types.VirtualMachineConfigInfo{Hardware: types.VirtualHardware{Device: vmDevs}}) {
		visit(flatBacking(d))
	}
	for _, o := range others {
		simulator.Map.WithLock(o, func() {
			for _, d := range vmDisks(&o.Config) {
				visit(flatBacking(d))
			}
		})
	}
	F, D := "", ""
	for _, f := range files {
		if pinned[f] || len(children[f]) != 1 {
			continue
		}
		for k := range children[f] {
			if v.deltas[k] {
				F, D = f, k
			}
		}
		if D != "" {
			break
		}
	}
	if D == "" {
		return false, nil
	}

	if err := run("qemu-img", "commit", "-q", "-f", "vmdk", "-d", l.localPath(D)); err != nil {
		return false, err
	}
	if err := normalizeDescriptor(l.localPath(F)); err != nil {
		return false, err
	}
	ft, err := readDescriptor(l.localPath(F))
	if err != nil {
		return false, err
	}
	fcid := descValue(ft, "CID")
	for x := range children[D] {
		xl := l.localPath(x)
		text, err := readDescriptor(xl)
		if err != nil {
			return false, err
		}
		rel, _ := filepath.Rel(filepath.Dir(xl), l.localPath(F))
		text = setDescValues(text, [][2]string{{"parentCID", fcid}, {"parentFileNameHint", fmt.Sprintf("%q", filepath.ToSlash(rel))}})
		if err = writeDescriptor(xl, text); err != nil {
			return false, err
		}
	}
	// Chains: replace the D node by (a copy of) its parent F node, keeping
	// D's change id (F now holds D's data).
	relink := func(b **backing) {
		for p := b; *p != nil; p = &(*p).Parent {
			if (*p).FileName == D && (*p).Parent != nil {
				cp := *(*p).Parent
				cp.ChangeId = (*p).ChangeId
				*p = &cp
				return
			}
		}
	}
	relinkDisks := func(devs []types.BaseVirtualDevice) {
		for _, d := range devs {
			if disk, ok := d.(*types.VirtualDisk); ok {
				if b := flatBacking(disk); b != nil {
					relink(&b)
					disk.Backing = b
				}
			}
		}
	}
	relinkDisks(vmDevs)
	setDevices(v, vmDevs)
	for _, o := range others {
		simulator.Map.WithLock(o, func() { relinkDisks(o.Config.Hardware.Device) })
	}
	l.mu.Lock()
	for _, w := range l.writes[D] {
		if w.Via == "" {
			w.Via = D
		}
		l.writes[F] = append(l.writes[F], w)
	}
	delete(l.writes, D)
	l.mu.Unlock()
	log.Printf("%s: merged %s into %s", v.name, D, F)
	return true, nil
}

// consolidate merges until nothing is due.
func (l *Lab) consolidate(v *labVM, removed map[types.ManagedObjectReference]bool) error {
	for i := 0; i < 1000; i++ {
		merged, err := l.mergeOnce(v, removed)
		if err != nil || !merged {
			return err
		}
	}
	return fmt.Errorf("consolidation does not end")
}

// parentSnapshot finds the parent of ref in a snapshot tree (nil for a root).
func parentSnapshot(t []types.VirtualMachineSnapshotTree, ref types.ManagedObjectReference, parent *types.ManagedObjectReference) *types.ManagedObjectReference {
	for _, s := range t {
		if s.Snapshot == ref {
			return parent
		}
		self := s.Snapshot
		if p := parentSnapshot(s.ChildSnapshotList, ref, &self); p != nil {
			return p
		}
	}
	return nil
}

func (l *Lab) removeSnapshots(w http.ResponseWriter, r *http.Request, body []byte, method string, this types.ManagedObjectReference) {
	var v *labVM
	var targets []types.ManagedObjectReference
	if method == "RemoveSnapshot_Task" {
		s := snapshotObj(this)
		m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
		if s == nil || err != nil {
			sendRecorded(w, l.forwardRecorded(r, body))
			return
		}
		v = l.byRef[s.Vm]
		if v == nil {
			sendRecorded(w, l.forwardRecorded(r, body))
			return
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		if m.Body.(*types.RemoveSnapshot_Task).RemoveChildren {
			targets = postOrder(v.obj, &this)
		} else {
			targets = []types.ManagedObjectReference{this}
		}
	} else {
		v = l.byRef[this]
		if v == nil {
			sendRecorded(w, l.forwardRecorded(r, body))
			return
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		targets = postOrder(v.obj, nil)
	}

	if l.nfcLocked(w, v, method) {
		return
	}
	before := referencedFiles(v, nil)
	removed := map[types.ManagedObjectReference]bool{}
	for _, t := range targets {
		removed[t] = true
	}
	if err := l.consolidate(v, removed); err != nil {
		log.Printf("%s %s: %v", method, this.Value, err)
		l.relayout(v)
		l.failTask(w, v.obj, method, fileFault(err))
		return
	}
	simulator.Map.WithLock(v.obj, func() {
		// The simulator deletes the files whose layoutEx keys a removed
		// snapshot names, looked up in a file list its own storage refresh
		// renumbers (RemoveAllSnapshots_Task would delete random files): the
		// lab deletes snapshot files itself.
		for i := range v.obj.LayoutEx.Snapshot {
			if removed[v.obj.LayoutEx.Snapshot[i].Key] {
				v.obj.LayoutEx.Snapshot[i].DataKey = -1
				v.obj.LayoutEx.Snapshot[i].MemoryKey = -1
			}
		}
		// The simulator moves currentSnapshot only when the removed snapshot
		// itself is current, and panics when that one has no parent but
		// children: set it here as vSphere does (the parent of the removed
		// subtree, or none).
		if method == "RemoveSnapshot_Task" && v.obj.Snapshot != nil && v.obj.Snapshot.CurrentSnapshot != nil &&
			removed[*v.obj.Snapshot.CurrentSnapshot] {
			parent := parentSnapshot(v.obj.Snapshot.RootSnapshotList, this, nil)
			if parent == nil {
				v.obj.Snapshot.CurrentSnapshot = nil
			} else if *v.obj.Snapshot.CurrentSnapshot != this {
				p := *parent
				v.obj.Snapshot.CurrentSnapshot = &p
			}
		}
	})
	rec := l.forwardRecorded(r, body)
	if !taskOK(recordedTask(rec)) {
		log.Printf("%s: the simulator's task failed: %s", method, rec.Body.String())
	}
	l.collect(v, before)
	for _, t := range targets {
		if sr := v.snaps[t.Value]; sr != nil {
			if sr.Vmsn != "" {
				_ = os.Remove(l.localPath(sr.Vmsn))
			}
			delete(v.snaps, t.Value)
		}
	}
	l.relayout(v)
	sendRecorded(w, rec)
}

// collect deletes the lab's delta files that were in use before and are no
// longer used by the VM or any snapshot.  Base disks are never deleted.
func (l *Lab) collect(v *labVM, before map[string]bool) {
	after := referencedFiles(v, nil)
	for f := range before {
		if !after[f] && v.deltas[f] {
			if err := os.Remove(l.localPath(f)); err != nil && !os.IsNotExist(err) {
				log.Printf("removing %s: %v", f, err)
			}
			delete(v.deltas, f)
			l.mu.Lock()
			delete(l.writes, f)
			l.mu.Unlock()
		}
	}
}

// ---- RevertToSnapshot_Task / RevertToCurrentSnapshot_Task ----

// revert points the VM's disks at new deltas on top of the snapshot's files.
//
// SIMULATED: vSphere reverts the whole VM (config, memory, power state);
// the lab restores the snapshot's device list, gives each disk a new
// running delta child of the snapshot's file, and deletes the abandoned
// running deltas that no snapshot uses.  Power state is left alone.
func (l *Lab) revert(w http.ResponseWriter, r *http.Request, body []byte, method string, this types.ManagedObjectReference) {
	var v *labVM
	var target types.ManagedObjectReference
	if method == "RevertToSnapshot_Task" {
		s := snapshotObj(this)
		if s == nil {
			sendRecorded(w, l.forwardRecorded(r, body))
			return
		}
		v, target = l.byRef[s.Vm], this
	} else {
		v = l.byRef[this]
		if v != nil {
			simulator.Map.WithLock(v.obj, func() {
				if v.obj.Snapshot != nil && v.obj.Snapshot.CurrentSnapshot != nil {
					target = *v.obj.Snapshot.CurrentSnapshot
				}
			})
		}
	}
	s := snapshotObj(target)
	if v == nil || s == nil {
		sendRecorded(w, l.forwardRecorded(r, body))
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if l.nfcLocked(w, v, method) {
		return
	}
	before := referencedFiles(v, nil)
	var devs []types.BaseVirtualDevice
	simulator.Map.WithLock(s, func() { devs = deepCopy(s.Config.Hardware.Device) })
	var made []string
	for _, d := range devs {
		disk, ok := d.(*types.VirtualDisk)
		if !ok || flatBacking(disk) == nil || strings.HasPrefix(flatBacking(disk).DiskMode, "independent") {
			continue
		}
		nb, err := l.createDelta(v, flatBacking(disk))
		if err != nil {
			for _, f := range made {
				_ = os.Remove(l.localPath(f))
				delete(v.deltas, f)
			}
			l.failTask(w, v.obj, method, fileFault(err))
			return
		}
		disk.Backing = nb
		made = append(made, nb.FileName)
	}
	old := currentDevices(v)
	setDevices(v, devs)
	rec := l.forwardRecorded(r, body)
	if !taskOK(recordedTask(rec)) {
		setDevices(v, old)
		for _, f := range made {
			_ = os.Remove(l.localPath(f))
			delete(v.deltas, f)
		}
		sendRecorded(w, rec)
		return
	}
	l.mu.Lock()
	for _, f := range made {
		l.writes[f] = []writeRec{}
	}
	l.mu.Unlock()
	l.collect(v, before)
	if err := l.consolidate(v, nil); err != nil {
		log.Printf("%s: %v", method, err)
	}
	l.collect(v, before)
	l.relayout(v)
	sendRecorded(w, rec)
}

// ---- ReconfigVM_Task ----

// reconfig forwards ReconfigVM_Task, working around the simulator's check
// that an existing disk added without fileOperation has a "-flat.vmdk"
// (a sparse delta has none): an empty placeholder exists during the call.
func (l *Lab) reconfig(w http.ResponseWriter, r *http.Request, body []byte, this types.ManagedObjectReference) {
	var placeholders []string
	var hreq *types.ReconfigVM_Task // the proxy's disks (hotadd.go)
	if m, err := simulator.UnmarshalBody(types.TypeFunc(), body); err == nil {
		req := m.Body.(*types.ReconfigVM_Task)
		if hreq = req; l.hotaddPre(w, req, this) {
			return
		}
		for _, dc := range req.Spec.DeviceChange {
			spec := dc.GetVirtualDeviceConfigSpec()
			disk, ok := spec.Device.(*types.VirtualDisk)
			if !ok || spec.Operation != types.VirtualDeviceConfigSpecOperationAdd || spec.FileOperation != "" {
				continue
			}
			fb, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
			if !ok {
				continue
			}
			local := l.localPath(fb.GetVirtualDeviceFileBackingInfo().FileName)
			flat := strings.TrimSuffix(local, ".vmdk") + "-flat.vmdk"
			if _, err := os.Stat(local); err != nil {
				continue
			}
			if _, err := os.Stat(flat); os.IsNotExist(err) {
				if f, err := os.OpenFile(flat, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
					f.Close()
					placeholders = append(placeholders, flat)
				}
			}
		}
	}
	rec := l.forwardRecorded(r, body)
	for _, p := range placeholders {
		_ = os.Remove(p)
	}
	if hreq != nil {
		l.hotaddPost(hreq, this, rec)
	}
	if v := l.byRef[this]; v != nil {
		v.mu.Lock()
		l.relayout(v)
		v.mu.Unlock()
	}
	sendRecorded(w, rec)
}
