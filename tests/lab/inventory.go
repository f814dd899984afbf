package main

import (
	"context"
	"crypto/sha1"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// Lab is the state this program keeps beside the simulator's own.
type Lab struct {
	esx        bool
	rawXML     bool
	user, pass string
	descStyle  string
	certFile   string
	sdkURL     string
	controlURL string

	dsName string
	dsDir  string
	dsRef  types.ManagedObjectReference
	dcName string

	vms   []*labVM
	byRef map[types.ManagedObjectReference]*labVM

	inner http.Handler       // the simulator's own HTTP handler
	nfc   *nfcServer         // authd + NFC (nfc.go)
	ictx  *simulator.Context // context for calling simulator methods in-process

	mu       sync.Mutex // guards everything below
	idle     time.Duration
	disabled []*disabledEntry
	faults   []*faultRule
	delays   []*delayRule
	drops    []*dropRule
	acceptDr int
	calls    map[string]int
	callLog  []string
	writes   map[string][]writeRec // datastore path -> data written by the lab

	forcedPage int                     // /lab/page?max=N: RetrievePropertiesEx page size (0: off)
	paged      map[string]*pagedResult // token -> rest of a RetrievePropertiesEx result

	vmfs map[types.ManagedObjectReference]*vmfsSaved // /lab/vmfs: datastores reported as VMFS (vmfs.go)
}

type labVM struct {
	mu    sync.Mutex // serializes the lab's disk operations on this VM
	ref   types.ManagedObjectReference
	name  string
	index int
	dir   string // local folder of the VM
	obj   *simulator.VirtualMachine

	fileKeys map[string]int32 // datastore path -> layoutEx file key (stable)
	nextKey  int32
	snaps    map[string]*snapRec // by snapshot moref value
	deltas   map[string]bool     // delta disks the lab made (datastore paths)
}

type snapRec struct {
	Ref     string    `json:"moref"`
	Name    string    `json:"name"`
	Memory  bool      `json:"memory"`
	Quiesce bool      `json:"quiesce"`
	Vmsn    string    `json:"vmsn"`
	Created time.Time `json:"created"`
}

// writeRec is data the lab wrote into a disk file: Length bytes at Offset,
// every byte = Pattern ("0x11"), or Pattern "lba-label": each 512-byte sector
// holds the text "<vm> disk<N> lba <LBA>\n" then zeros, or Pattern "nfc":
// whatever a client wrote through NFC.
type writeRec struct {
	Offset  int64  `json:"offset"`
	Length  int64  `json:"length"`
	Pattern string `json:"pattern"`
	Via     string `json:"via,omitempty"` // file the write went to, when merged since
}

func newLab(esx bool, user, pass, descStyle string) *Lab {
	return &Lab{
		esx:       esx,
		user:      user,
		pass:      pass,
		descStyle: descStyle,
		byRef:     map[types.ManagedObjectReference]*labVM{},
		calls:     map[string]int{},
		writes:    map[string][]writeRec{},
		paged:     map[string]*pagedResult{},
		vmfs:      map[types.ManagedObjectReference]*vmfsSaved{},
	}
}

// setupInventory replaces the simulator's empty disk1.vmdk of each VM by a
// real disk with known content: <vm>/<vm>.vmdk (+ <vm>_N.vmdk for further
// disks of the first VM).
//
// SIMULATED: vcsim's VM disks are empty placeholder files; the lab's are
// real images made by qemu-img (a descriptor + "-flat.vmdk" extent, as ESXi
// lays out a thick disk on VMFS) filled with known data, with the backing
// fields vSphere reports (uuid, changeId, capacity, key 2000+unit on SCSI
// controller 1000).
func (l *Lab) setupInventory(size int64, firstDisks int) error {
	l.ictx = &simulator.Context{
		Context: context.Background(),
		Session: &simulator.Session{
			UserSession: types.UserSession{Key: "vmdkfs-lab-internal", UserName: "vmdkfs-lab"},
			Registry:    simulator.NewRegistry(),
		},
		Map: simulator.Map,
	}

	dss := simulator.Map.All("Datastore")
	if len(dss) == 0 {
		return fmt.Errorf("no datastore")
	}
	ds := dss[0].(*simulator.Datastore)
	l.dsName = ds.Name
	l.dsRef = ds.Self
	l.dsDir = ds.Info.GetDatastoreInfo().Url
	dcs := simulator.Map.All("Datacenter")
	if len(dcs) > 0 {
		l.dcName = dcs[0].(*simulator.Datacenter).Name
	}

	var vms []*simulator.VirtualMachine
	for _, e := range simulator.Map.All("VirtualMachine") {
		vms = append(vms, e.(*simulator.VirtualMachine))
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	for i, vm := range vms {
		v := &labVM{
			ref:      vm.Self,
			name:     vm.Name,
			index:    i,
			dir:      filepath.Join(l.dsDir, vm.Name),
			obj:      vm,
			fileKeys: map[string]int32{},
			snaps:    map[string]*snapRec{},
			deltas:   map[string]bool{},
		}
		n := 1
		if i == 0 {
			n = firstDisks
		}
		if err := l.setupVM(v, size, n); err != nil {
			return fmt.Errorf("%s: %v", vm.Name, err)
		}
		l.vms = append(l.vms, v)
		l.byRef[vm.Self] = v
	}
	return nil
}

// diskPattern is the fill byte of VM index i, disk d: 0x11, 0x12 ... for
// the first VM, 0x21 ... for the second.
func diskPattern(i, d int) byte { return byte(0x10*(i+1) + d + 1) }

func (l *Lab) setupVM(v *labVM, size int64, ndisks int) error {
	vm := v.obj
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)

	// The simulator's placeholder disk: remove it, keep it as a template.
	var tmpl *types.VirtualDisk
	var keep object.VirtualDeviceList
	for _, d := range devices {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			keep = append(keep, d)
			continue
		}
		if tmpl == nil {
			tmpl = disk
		}
		if b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
			for _, f := range []string{b.GetVirtualDeviceFileBackingInfo().FileName} {
				p := l.localPath(f)
				_ = os.Remove(p)
				_ = os.Remove(strings.TrimSuffix(p, ".vmdk") + "-flat.vmdk")
			}
		}
	}
	devices = keep
	if tmpl == nil {
		return fmt.Errorf("no disk in the simulator's VM")
	}
	// SCSI controller key 1000, disks 2000+unit, as vSphere numbers them.
	var ctrl types.BaseVirtualSCSIController
	for _, d := range devices {
		if c, ok := d.(types.BaseVirtualSCSIController); ok {
			ctrl = c
			break
		}
	}
	if ctrl == nil {
		return fmt.Errorf("no SCSI controller")
	}
	cdev := ctrl.GetVirtualSCSIController()
	adapter := "lsilogic"
	if _, ok := ctrl.(*types.ParaVirtualSCSIController); ok {
		adapter = "pvscsi"
	}
	cdev.Key = 1000
	cdev.Device = nil

	for d := 0; d < ndisks; d++ {
		base := v.name
		if d > 0 {
			base = fmt.Sprintf("%s_%d", v.name, d)
		}
		dsPath := fmt.Sprintf("[%s] %s/%s.vmdk", l.dsName, v.name, base)
		local := l.localPath(dsPath)
		uuid16, uuid := diskUUID(v.name, d)
		if err := run("qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", local, strconv.FormatInt(size, 10)); err != nil {
			return err
		}
		if err := normalizeDescriptor(local); err != nil {
			return err
		}
		if l.descStyle == "vmfs" {
			text, err := readDescriptor(local)
			if err != nil {
				return err
			}
			if err = writeDescriptor(local, vmfsStyle(text, uuid16, adapter)); err != nil {
				return err
			}
		}
		if err := l.fillBase(v, d, dsPath, strings.TrimSuffix(local, ".vmdk")+"-flat.vmdk", size); err != nil {
			return err
		}

		unit := int32(d)
		if unit >= 7 {
			unit++ // unit 7 is the controller's own
		}
		disk := &types.VirtualDisk{
			VirtualDevice: types.VirtualDevice{
				Key:           2000 + unit,
				DeviceInfo:    &types.Description{Label: fmt.Sprintf("Hard disk %d", d+1), Summary: fmt.Sprintf("%s KB", commas(size/1024))},
				ControllerKey: cdev.Key,
				UnitNumber:    types.NewInt32(unit),
				Backing: &types.VirtualDiskFlatVer2BackingInfo{
					VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{
						FileName:  dsPath,
						Datastore: &l.dsRef,
					},
					DiskMode:        string(types.VirtualDiskModePersistent),
					Split:           types.NewBool(false),
					WriteThrough:    types.NewBool(false),
					ThinProvisioned: types.NewBool(false),
					EagerlyScrub:    types.NewBool(false),
					Uuid:            uuid,
					ChangeId:        changeID(v.name, d, 1),
					DigestEnabled:   types.NewBool(false),
					Sharing:         "sharingNone",
				},
			},
			CapacityInKB:    size / 1024,
			CapacityInBytes: size,
		}
		if tmpl.Shares != nil {
			disk.Shares = tmpl.Shares
		}
		cdev.Device = append(cdev.Device, disk.Key)
		devices = append(devices, disk)
	}

	vm.Config.Hardware.Device = devices
	vm.Config.ChangeTrackingEnabled = types.NewBool(true)
	vm.Summary.Config.NumVirtualDisks = int32(ndisks)
	l.relayout(v)
	return nil
}

// fillBase writes the known content of a base disk straight into its flat
// extent (raw): pattern bytes at 0 (1 MiB), an LBA-labelled region at 2 MiB
// (64 KiB), the inverted pattern at 5 MiB (64 KiB) and the pattern in the
// last 4 KiB.  Everything else reads as zeros.
func (l *Lab) fillBase(v *labVM, d int, dsPath, flat string, size int64) error {
	f, err := os.OpenFile(flat, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	p := diskPattern(v.index, d)
	recs := []writeRec{
		{Offset: 0, Length: 1 << 20, Pattern: fmt.Sprintf("0x%02x", p)},
		{Offset: 2 << 20, Length: 64 << 10, Pattern: "lba-label"},
		{Offset: 5 << 20, Length: 64 << 10, Pattern: fmt.Sprintf("0x%02x", p^0xff)},
		{Offset: size - 4096, Length: 4096, Pattern: fmt.Sprintf("0x%02x", p)},
	}
	for _, r := range recs {
		buf := make([]byte, r.Length)
		if r.Pattern == "lba-label" {
			for s := int64(0); s < r.Length/512; s++ {
				copy(buf[s*512:], fmt.Sprintf("%s disk%d lba %d\n", v.name, d, r.Offset/512+s))
			}
		} else {
			b, _ := strconv.ParseUint(r.Pattern[2:], 16, 8)
			for i := range buf {
				buf[i] = byte(b)
			}
		}
		if _, err = f.WriteAt(buf, r.Offset); err != nil {
			return err
		}
	}
	l.writes[dsPath] = recs
	return f.Sync()
}

// diskUUID gives a stable per-disk UUID in VMware's style (6000C29...), as
// the descriptor's ddb.uuid ("60 00 C2 9x ...") and as backing.uuid.
func diskUUID(vm string, d int) (string, string) {
	h := sha1.Sum([]byte(fmt.Sprintf("vmdkfs-lab/%s/%d", vm, d)))
	b := make([]byte, 16)
	copy(b, h[:])
	b[0], b[1], b[2] = 0x60, 0x00, 0xc2
	b[3] = 0x90 | (b[3] & 0x0f)
	var sp []string
	for _, c := range b {
		sp = append(sp, fmt.Sprintf("%02x", c))
	}
	u := fmt.Sprintf("%X-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	return strings.Join(sp, " "), u
}

// changeID gives a CBT change id in vSphere's form "52 xx .. xx-xx .. xx/N".
func changeID(vm string, d int, seq int) string {
	h := sha1.Sum([]byte(fmt.Sprintf("vmdkfs-lab-cbt/%s/%d", vm, d)))
	h[0] = 0x52
	var a, b []string
	for i := 0; i < 8; i++ {
		a = append(a, fmt.Sprintf("%02x", h[i]))
		b = append(b, fmt.Sprintf("%02x", h[8+i]))
	}
	return fmt.Sprintf("%s-%s/%d", strings.Join(a, " "), strings.Join(b, " "), seq)
}

// bumpChangeID returns the change id with its sequence number incremented.
func bumpChangeID(id string) string {
	i := strings.LastIndexByte(id, '/')
	if i < 0 {
		return id
	}
	n, _ := strconv.Atoi(id[i+1:])
	return id[:i+1] + strconv.Itoa(n+1)
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// localPath maps "[DS] dir/file" to the file in the datastore's folder.
func (l *Lab) localPath(dsPath string) string {
	var p object.DatastorePath
	if !p.FromString(dsPath) {
		return ""
	}
	return filepath.Join(l.dsDir, filepath.FromSlash(p.Path))
}

func (l *Lab) dsPath(local string) string {
	rel, err := filepath.Rel(l.dsDir, local)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("[%s] %s", l.dsName, filepath.ToSlash(rel))
}

// ---- disks of a configuration ----

func vmDisks(cfg *types.VirtualMachineConfigInfo) []*types.VirtualDisk {
	var out []*types.VirtualDisk
	if cfg == nil {
		return nil
	}
	for _, d := range cfg.Hardware.Device {
		if disk, ok := d.(*types.VirtualDisk); ok {
			out = append(out, disk)
		}
	}
	return out
}

func flatBacking(d *types.VirtualDisk) *types.VirtualDiskFlatVer2BackingInfo {
	b, _ := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	return b
}

// chain lists a backing's files, top (running) first.
func chain(b *types.VirtualDiskFlatVer2BackingInfo) []string {
	var out []string
	for ; b != nil; b = b.Parent {
		out = append(out, b.FileName)
	}
	return out
}

// snapshotRefs lists a VM's snapshots, depth first in tree order.
func snapshotRefs(vm *simulator.VirtualMachine) []types.ManagedObjectReference {
	var out []types.ManagedObjectReference
	var walk func([]types.VirtualMachineSnapshotTree)
	walk = func(t []types.VirtualMachineSnapshotTree) {
		for _, s := range t {
			out = append(out, s.Snapshot)
			walk(s.ChildSnapshotList)
		}
	}
	if vm.Snapshot != nil {
		walk(vm.Snapshot.RootSnapshotList)
	}
	return out
}

func snapshotObj(ref types.ManagedObjectReference) *simulator.VirtualMachineSnapshot {
	s, _ := simulator.Map.Get(ref).(*simulator.VirtualMachineSnapshot)
	return s
}

// ---- layout / layoutEx ----

func fileType(name string) types.VirtualMachineFileLayoutExFileType {
	base := strings.TrimSuffix(name, path.Ext(name))
	switch path.Ext(name) {
	case ".vmx":
		return types.VirtualMachineFileLayoutExFileTypeConfig
	case ".nvram":
		return types.VirtualMachineFileLayoutExFileTypeNvram
	case ".vmsd":
		return types.VirtualMachineFileLayoutExFileTypeSnapshotList
	case ".vmsn":
		return types.VirtualMachineFileLayoutExFileTypeSnapshotData
	case ".log":
		return types.VirtualMachineFileLayoutExFileTypeLog
	case ".vswp":
		return types.VirtualMachineFileLayoutExFileTypeSwap
	case ".vmdk":
		for _, s := range []string{"-flat", "-delta", "-sesparse", "-rdm", "-rdmp"} {
			if strings.HasSuffix(base, s) {
				return types.VirtualMachineFileLayoutExFileTypeDiskExtent
			}
		}
		return types.VirtualMachineFileLayoutExFileTypeDiskDescriptor
	}
	return ""
}

// relayout recomputes the VM's layout and layoutEx from the files in its
// folder and the disk chains of its configuration and snapshots.  Caller
// must not hold the simulator's lock on the VM.
//
// SIMULATED: the simulator's own layout code only knows "-flat.vmdk"
// extents and loses the folder of files it finds (RefreshStorageInfo); this
// recomputes both layouts the way vSphere reports them: layoutEx.file for
// every file, layoutEx.disk[].chain with the base disk first and the
// running delta last, layout.disk[].diskFile with the running descriptor
// first, and the snapshots' disk chains as of each snapshot.
func (l *Lab) relayout(v *labVM) {
	simulator.Map.WithLock(v.obj, func() { l.relayoutLocked(v) })
}

func (l *Lab) relayoutLocked(v *labVM) {
	vm := v.obj
	ex := &types.VirtualMachineFileLayoutEx{Timestamp: time.Now()}
	lay := &types.VirtualMachineFileLayout{}
	added := map[string]bool{}

	key := func(dsPath string) int32 {
		k, ok := v.fileKeys[dsPath]
		if !ok {
			k = v.nextKey
			v.nextKey++
			v.fileKeys[dsPath] = k
		}
		return k
	}
	addFile := func(dsPath string) (int32, bool) {
		local := l.localPath(dsPath)
		st, err := os.Stat(local)
		if err != nil || st.IsDir() {
			return 0, false
		}
		k := key(dsPath)
		if !added[dsPath] {
			added[dsPath] = true
			ft := fileType(dsPath)
			ex.File = append(ex.File, types.VirtualMachineFileLayoutExFileInfo{
				Key:        k,
				Name:       dsPath,
				Type:       string(ft),
				Size:       st.Size(),
				UniqueSize: st.Size(),
				Accessible: types.NewBool(true),
			})
			rel := strings.TrimPrefix(dsPath, fmt.Sprintf("[%s] %s/", l.dsName, v.name))
			switch ft {
			case types.VirtualMachineFileLayoutExFileTypeNvram, types.VirtualMachineFileLayoutExFileTypeSnapshotList:
				lay.ConfigFile = append(lay.ConfigFile, rel)
			case types.VirtualMachineFileLayoutExFileTypeLog:
				lay.LogFile = append(lay.LogFile, rel)
			case types.VirtualMachineFileLayoutExFileTypeSwap:
				lay.SwapFile = dsPath
			}
		}
		return k, true
	}
	diskUnit := func(dsPath string) types.VirtualMachineFileLayoutExDiskUnit {
		var u types.VirtualMachineFileLayoutExDiskUnit
		if k, ok := addFile(dsPath); ok {
			u.FileKey = append(u.FileKey, k)
		}
		var dp object.DatastorePath
		dp.FromString(dsPath)
		for _, e := range extentFiles(l.localPath(dsPath)) {
			if k, ok := addFile(fmt.Sprintf("[%s] %s", dp.Datastore, path.Join(path.Dir(dp.Path), e))); ok {
				u.FileKey = append(u.FileKey, k)
			}
		}
		return u
	}
	diskLayouts := func(cfg *types.VirtualMachineConfigInfo) ([]types.VirtualMachineFileLayoutExDiskLayout, []types.VirtualMachineFileLayoutDiskLayout, []string) {
		var exd []types.VirtualMachineFileLayoutExDiskLayout
		var ld []types.VirtualMachineFileLayoutDiskLayout
		var files []string
		for _, d := range vmDisks(cfg) {
			b := flatBacking(d)
			if b == nil {
				continue
			}
			c := chain(b)
			dl := types.VirtualMachineFileLayoutExDiskLayout{Key: d.Key}
			for i := len(c) - 1; i >= 0; i-- { // base first
				dl.Chain = append(dl.Chain, diskUnit(c[i]))
			}
			exd = append(exd, dl)
			ld = append(ld, types.VirtualMachineFileLayoutDiskLayout{Key: d.Key, DiskFile: c})
			files = append(files, c...)
		}
		return exd, ld, files
	}

	// Configuration files first (the .vmx first), in name order.
	addFile(vm.Config.Files.VmPathName)
	if ents, err := os.ReadDir(v.dir); err == nil {
		for _, e := range ents {
			if fileType(e.Name()) != "" && path.Ext(e.Name()) != ".vmdk" {
				addFile(fmt.Sprintf("[%s] %s/%s", l.dsName, v.name, e.Name()))
			}
		}
	}
	ex.Disk, lay.Disk, _ = diskLayouts(vm.Config)
	for _, ref := range snapshotRefs(vm) {
		s := snapshotObj(ref)
		if s == nil {
			continue
		}
		exd, _, files := diskLayouts(&s.Config)
		sl := types.VirtualMachineFileLayoutExSnapshotLayout{Key: ref, DataKey: -1, MemoryKey: -1, Disk: exd}
		var snapFiles []string
		if r := v.snaps[ref.Value]; r != nil && r.Vmsn != "" {
			if k, ok := addFile(r.Vmsn); ok {
				sl.DataKey = k
				snapFiles = append(snapFiles, r.Vmsn)
			}
		}
		ex.Snapshot = append(ex.Snapshot, sl)
		lay.Snapshot = append(lay.Snapshot, types.VirtualMachineFileLayoutSnapshotLayout{Key: ref, SnapshotFile: append(snapFiles, files...)})
	}
	// Any other disk file left in the folder (e.g. a disk being deleted).
	if ents, err := os.ReadDir(v.dir); err == nil {
		for _, e := range ents {
			if path.Ext(e.Name()) == ".vmdk" {
				addFile(fmt.Sprintf("[%s] %s/%s", l.dsName, v.name, e.Name()))
			}
		}
	}
	sort.SliceStable(ex.File, func(i, j int) bool { return ex.File[i].Key < ex.File[j].Key })
	simulator.Map.Update(vm, []types.PropertyChange{
		{Name: "layout", Val: lay},
		{Name: "layoutEx", Val: ex},
	})
}

// ---- deep copy ----

// deepCopy copies a value with everything it points to, so that a
// snapshot's configuration does not share devices with the running VM.
func deepCopy[T any](v T) T {
	return copyValue(reflect.ValueOf(&v).Elem()).Interface().(T)
}

func copyValue(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Ptr:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		n := reflect.New(v.Type().Elem())
		n.Elem().Set(copyValue(v.Elem()))
		return n
	case reflect.Interface:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		n := reflect.New(v.Type()).Elem()
		n.Set(copyValue(v.Elem()))
		return n
	case reflect.Slice:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		n := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			n.Index(i).Set(copyValue(v.Index(i)))
		}
		return n
	case reflect.Map:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		n := reflect.MakeMapWithSize(v.Type(), v.Len())
		for _, k := range v.MapKeys() {
			n.SetMapIndex(k, copyValue(v.MapIndex(k)))
		}
		return n
	case reflect.Struct:
		n := reflect.New(v.Type()).Elem()
		n.Set(v) // also copies unexported fields (e.g. time.Time)
		for i := 0; i < v.NumField(); i++ {
			if n.Field(i).CanSet() {
				n.Field(i).Set(copyValue(v.Field(i)))
			}
		}
		return n
	}
	return v
}
