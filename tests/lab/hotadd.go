package main

// HotAdd: one lab VM is the proxy that vmdkfs runs in, and this machine
// is presented as that VM through a test sysfs root.
//
// SIMULATED throughout (this kernel has no SCSI layer the lab could drive,
// and vmdkfs does not run in a VM):
//
//   - DMI: SYSFS/class/dmi/id/sys_vendor "VMware, Inc." and product_uuid,
//     the proxy's config.uuid with its first three fields byte-swapped (as
//     Linux shows a VMware BIOS UUID from SMBIOS 2.6 on; swapped=0: as is),
//     in upper case.
//   - The proxy's SCSI controllers get slotInfo.pciSlotNumber 160 + 32*bus
//     (pvscsi behind PCIe root ports pciBridge4..7, as VMware lays out
//     virtual hardware 7 and later), and SYSFS/devices/pci0000:00/... the
//     matching PCI path per Linux SCSI host: host0 and host1 ata_piix
//     (0000:00:07.1, slot 7), then host2, host3, ... one per SCSI
//     controller (bus 0: 0000:00:15.0/0000:03:00.0, bus 1:
//     0000:00:16.0/0000:0b:00.0, ...); class/scsi_host/hostN links into it,
//     each with a scan file.  The Linux host number is not the bus number.
//   - The proxy's own disks are SCSI devices H:0:U:0 with a block/sdX/size
//     (no device node).
//   - A disk added to the proxy by ReconfigVM_Task (an existing file, no
//     fileOperation) appears only once a scan file is written: its chain is
//     resolved by qemu-storage-daemon (a FUSE export of the vmdk driver over
//     the disk file; read-only for independent_nonpersistent, writable for
//     persistent), a loop device over that export (--direct-io=on where
//     taken), SYSFS/bus/scsi/devices/H:0:U:0 -> the device under its host's
//     PCI path with block/loopN/size (512-byte sectors) and a delete file,
//     and DEV/loopN -> /dev/loopN.  With decoy=1 (the default) a scan also
//     makes a disk of the same size at the same unit on host1 (ata), which
//     only the host's PCI slot tells apart.
//   - "1" written to delete tears the device down (loop device, export);
//     ReconfigVM_Task remove of a disk whose device was never deleted is
//     refused with a SystemError fault (counted in remove_before_delete);
//     a remove after the delete, or of a disk never scanned, tears down
//     whatever is left.
//   - ESXi's redo log of an independent_nonpersistent disk is not made:
//     the export is read-only instead.
//
// Control: /lab/hotadd?proxy=VM&sysfs=DIR&dev=DIR[&swapped=0][&decoy=0]
// [&controllers=N]; /lab/hotadd?fill=U,U,... (placeholder disks on the
// proxy's first controller at those units), ?unfill=1, ?off=1 (tear down
// everything, forget the proxy), ?hide=N (the next N disks attached never
// appear on a scan: a guest that does not see the disk); GET /lab/hotadd:
// the state, also in /lab/state "hotadd".

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

type hotHost struct {
	Number  int    `json:"number"`
	PCI     string `json:"pci"`            // sysfs path under devices/
	CtlKey  int32  `json:"controller_key"` // 0: not a controller of the proxy (ata)
	Bus     int32  `json:"bus"`
	PCISlot int32  `json:"pci_slot"`
}

type hotDisk struct {
	Key      int32  `json:"key"`
	CtlKey   int32  `json:"controller_key"`
	Unit     int32  `json:"unit"`
	Host     int    `json:"host"`
	File     string `json:"file"`
	Mode     string `json:"disk_mode"`
	Label    string `json:"label"`
	Capacity int64  `json:"capacity_bytes"`
	Visible  bool   `json:"visible"` // a scan made its SCSI device
	Deleted  bool   `json:"deleted"` // its delete file was written
	Loop     string `json:"loop,omitempty"`
	Direct   bool   `json:"loop_direct_io"`
	Export   string `json:"export,omitempty"`
	Decoy    string `json:"decoy,omitempty"`
	Hidden   bool   `json:"hidden,omitempty"` // ?hide=: never appears
	pidFile  string
}

type hotaddLab struct {
	mu       sync.Mutex
	lab      *Lab
	proxy    *labVM
	sysfs    string
	dev      string
	work     string
	swapped  bool
	decoy    bool
	hosts    []hotHost
	disks    map[int32]*hotDisk
	fillers  []int32
	stop     chan struct{}
	hide     int
	Scans    int      `json:"scans"`
	Deletes  int      `json:"deletes"`
	Attaches int      `json:"attaches"`
	Removes  int      `json:"removes"`
	Bad      int      `json:"remove_before_delete"`
	Log      []string `json:"log"`
}

var hot = &hotaddLab{disks: map[int32]*hotDisk{}}

func (h *hotaddLab) logf(format string, a ...interface{}) {
	s := fmt.Sprintf(format, a...)
	h.Log = append(h.Log, s)
	log.Printf("hotadd: %s", s)
}

// swapUUID byte-swaps the first three fields of a UUID.
func swapUUID(u string) string {
	if len(u) != 36 {
		return u
	}
	sw := func(s string) string {
		var b strings.Builder
		for i := len(s) - 2; i >= 0; i -= 2 {
			b.WriteString(s[i : i+2])
		}
		return b.String()
	}
	return sw(u[0:8]) + "-" + sw(u[9:13]) + "-" + sw(u[14:18]) + u[18:]
}

func writeFile(p, s string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(s), 0o644)
}

// scsiControllers of the proxy's current devices, by bus number.
func scsiControllers(devs []types.BaseVirtualDevice) []types.BaseVirtualSCSIController {
	var out []types.BaseVirtualSCSIController
	for _, d := range devs {
		if c, ok := d.(types.BaseVirtualSCSIController); ok {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].GetVirtualSCSIController().BusNumber < out[j].GetVirtualSCSIController().BusNumber
	})
	return out
}

// pciPath: SIMULATED PCI placement of SCSI controller BUS (see the top).
func pciPath(bus int) (string, int32) {
	root := []string{"15", "16", "17", "18"}[bus%4]
	sec := []string{"03", "0b", "13", "1b"}[bus%4]
	return fmt.Sprintf("pci0000:00/0000:00:%s.0/0000:%s:00.0", root, sec), int32(160 + 32*(bus%4))
}

func (l *Lab) handleHotadd(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("off") != "":
		hot.off()
	case q.Get("fill") != "":
		if err := l.hotFill(q.Get("fill")); err != nil {
			bad(w, "%v", err)
			return
		}
	case q.Get("unfill") != "":
		l.hotUnfill()
	case q.Get("hide") != "":
		n, err := strconv.Atoi(q.Get("hide"))
		if err != nil || n < 0 {
			bad(w, "hide=N: a count")
			return
		}
		hot.mu.Lock()
		hot.hide = n
		hot.mu.Unlock()
	case q.Get("proxy") != "":
		v := l.findVM(q.Get("proxy"))
		if v == nil {
			bad(w, "proxy=%s: no such VM", q.Get("proxy"))
			return
		}
		if q.Get("sysfs") == "" || q.Get("dev") == "" {
			bad(w, "give sysfs=DIR and dev=DIR")
			return
		}
		n, _ := strconv.Atoi(q.Get("controllers"))
		if err := l.hotOn(v, q.Get("sysfs"), q.Get("dev"), q.Get("swapped") != "0", q.Get("decoy") != "0", n); err != nil {
			bad(w, "%v", err)
			return
		}
	}
	ok(w, map[string]interface{}{"hotadd": hot.state()})
}

func (h *hotaddLab) state() map[string]interface{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	disks := []*hotDisk{}
	for _, d := range h.disks {
		c := *d
		disks = append(disks, &c)
	}
	sort.Slice(disks, func(i, j int) bool { return disks[i].Key < disks[j].Key })
	proxy := ""
	if h.proxy != nil {
		proxy = h.proxy.ref.Value
	}
	return map[string]interface{}{
		"proxy": proxy, "sysfs": h.sysfs, "dev": h.dev, "hosts": h.hosts,
		"disks": disks, "scans": h.Scans, "deletes": h.Deletes,
		"attaches": h.Attaches, "removes": h.Removes,
		"remove_before_delete": h.Bad, "log": append([]string{}, h.Log...),
	}
}

// hotOn makes V the proxy and lays out the sysfs root.
func (l *Lab) hotOn(v *labVM, sysfs, dev string, swapped, decoy bool, nctl int) error {
	hot.off()
	for _, d := range []string{sysfs, dev} {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("%s: not an absolute path", d)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// Controllers: as many pvscsi as asked (at least the VM's own).
	devs := currentDevices(v)
	ctls := scsiControllers(devs)
	for len(ctls) < nctl && len(ctls) < 4 {
		bus := int32(len(ctls))
		c := &types.ParaVirtualSCSIController{VirtualSCSIController: types.VirtualSCSIController{
			VirtualController: types.VirtualController{
				VirtualDevice: types.VirtualDevice{Key: 1000 + bus, DeviceInfo: &types.Description{Label: fmt.Sprintf("SCSI controller %d", bus), Summary: "VMware paravirtual SCSI"}},
				BusNumber:     bus,
			},
			SharedBus: types.VirtualSCSISharingNoSharing, ScsiCtlrUnitNumber: 7,
		}}
		devs = append(devs, c)
		ctls = scsiControllers(devs)
	}
	for _, c := range ctls {
		sc := c.GetVirtualSCSIController()
		_, slot := pciPath(int(sc.BusNumber))
		sc.SlotInfo = &types.VirtualDevicePciBusSlotInfo{PciSlotNumber: slot}
	}
	setDevices(v, devs)

	var uuid string
	simulator.Map.WithLock(v.obj, func() { uuid = v.obj.Config.Uuid })
	hot.mu.Lock()
	defer hot.mu.Unlock()
	hot.lab, hot.proxy, hot.sysfs, hot.dev, hot.swapped, hot.decoy = l, v, sysfs, dev, swapped, decoy
	hot.work = filepath.Join(filepath.Dir(l.dsDir), "hotadd")
	hot.disks = map[int32]*hotDisk{}
	hot.hosts = nil
	hot.Log = nil
	shown := uuid
	if swapped {
		shown = swapUUID(uuid)
	}
	if err := os.MkdirAll(hot.work, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(sysfs, "class/dmi/id/sys_vendor"), "VMware, Inc.\n"); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(sysfs, "class/dmi/id/product_uuid"), strings.ToUpper(shown)+"\n"); err != nil {
		return err
	}
	_ = writeFile(filepath.Join(sysfs, "class/dmi/id/product_name"), "VMware Virtual Platform\n")
	// Hosts: two ata, then one per SCSI controller.
	for i := 0; i < 2; i++ {
		hot.hosts = append(hot.hosts, hotHost{Number: i, PCI: fmt.Sprintf("pci0000:00/0000:00:07.1/ata%d", i+1), PCISlot: 7})
	}
	for i, c := range ctls {
		sc := c.GetVirtualSCSIController()
		p, slot := pciPath(int(sc.BusNumber))
		hot.hosts = append(hot.hosts, hotHost{Number: 2 + i, PCI: p, CtlKey: sc.Key, Bus: sc.BusNumber, PCISlot: slot})
	}
	for _, h := range hot.hosts {
		sh := filepath.Join(sysfs, "devices", h.PCI, fmt.Sprintf("host%d", h.Number), "scsi_host", fmt.Sprintf("host%d", h.Number))
		if err := writeFile(filepath.Join(sh, "scan"), ""); err != nil {
			return err
		}
		_ = writeFile(filepath.Join(sh, "proc_name"), map[bool]string{true: "vmw_pvscsi\n", false: "ata_piix\n"}[h.CtlKey != 0])
		link := filepath.Join(sysfs, "class/scsi_host", fmt.Sprintf("host%d", h.Number))
		_ = os.MkdirAll(filepath.Dir(link), 0o755)
		_ = os.Remove(link)
		if err := os.Symlink(filepath.Join("../../devices", h.PCI, fmt.Sprintf("host%d", h.Number), "scsi_host", fmt.Sprintf("host%d", h.Number)), link); err != nil {
			return err
		}
	}
	_ = os.MkdirAll(filepath.Join(sysfs, "bus/scsi/devices"), 0o755)
	// The proxy's own disks: SCSI devices without a node.
	simulator.Map.WithLock(v.obj, func() {
		for i, d := range vmDisks(v.obj.Config) {
			if d.UnitNumber == nil {
				continue
			}
			if h := hot.hostOf(d.ControllerKey); h != nil {
				name := "sd" + string(rune('a'+i))
				hot.makeDevice(h, *d.UnitNumber, name, d.CapacityInBytes)
			}
		}
	})
	hot.stop = make(chan struct{})
	go hot.poll(hot.stop)
	hot.logf("proxy %s (%s), sysfs %s, dev %s, product_uuid %s", v.name, v.ref.Value, sysfs, dev, strings.ToUpper(shown))
	return nil
}

func (h *hotaddLab) hostOf(ctl int32) *hotHost {
	for i := range h.hosts {
		if h.hosts[i].CtlKey == ctl && ctl != 0 {
			return &h.hosts[i]
		}
	}
	return nil
}

func (h *hotaddLab) devName(host int, unit int32) string {
	return fmt.Sprintf("%d:0:%d:0", host, unit)
}

// makeDevice lays out SCSI device HOST:0:UNIT:0 with block/NAME.
func (h *hotaddLab) makeDevice(host *hotHost, unit int32, name string, bytes int64) {
	dn := h.devName(host.Number, unit)
	rel := filepath.Join("devices", host.PCI, fmt.Sprintf("host%d", host.Number), fmt.Sprintf("target%d:0:%d", host.Number, unit), dn)
	dir := filepath.Join(h.sysfs, rel)
	_ = writeFile(filepath.Join(dir, "block", name, "size"), fmt.Sprintf("%d\n", bytes/512))
	_ = writeFile(filepath.Join(dir, "delete"), "")
	_ = writeFile(filepath.Join(dir, "vendor"), "VMware  \n")
	link := filepath.Join(h.sysfs, "bus/scsi/devices", dn)
	_ = os.Remove(link)
	_ = os.Symlink(filepath.Join("../../..", rel), link)
}

func (h *hotaddLab) removeDevice(host int, unit int32) {
	dn := h.devName(host, unit)
	link := filepath.Join(h.sysfs, "bus/scsi/devices", dn)
	if real, err := filepath.EvalSymlinks(link); err == nil {
		_ = os.RemoveAll(real)
	}
	_ = os.Remove(link)
}

func (h *hotaddLab) poll(stop chan struct{}) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		h.mu.Lock()
		scanned := false
		for _, hh := range h.hosts {
			p := filepath.Join(h.sysfs, "devices", hh.PCI, fmt.Sprintf("host%d", hh.Number), "scsi_host", fmt.Sprintf("host%d", hh.Number), "scan")
			if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
				_ = os.WriteFile(p, nil, 0o644)
				if strings.TrimSpace(string(b)) != "- - -" {
					h.logf("host%d: scan of %q (only \"- - -\" is simulated)", hh.Number, strings.TrimSpace(string(b)))
				}
				scanned = true
			}
		}
		if scanned {
			h.Scans++
			for _, d := range h.disks {
				if !d.Visible && !d.Deleted && !d.Hidden {
					if err := h.bringUp(d); err != nil {
						h.logf("disk %d: %v", d.Key, err)
					}
				}
			}
		}
		for _, d := range h.disks {
			if !d.Visible || d.Deleted {
				continue
			}
			p := filepath.Join(h.sysfs, "bus/scsi/devices", h.devName(d.Host, d.Unit), "delete")
			if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "1" {
				h.Deletes++
				d.Deleted = true
				h.logf("disk %d: %s deleted", d.Key, h.devName(d.Host, d.Unit))
				h.tearDown(d)
			}
		}
		h.mu.Unlock()
	}
}

// bringUp: the SCSI device of disk D.  Called with h.mu held.
func (h *hotaddLab) bringUp(d *hotDisk) error {
	host := h.hostOf(d.CtlKey)
	if host == nil {
		return fmt.Errorf("controller %d has no host", d.CtlKey)
	}
	d.Host = host.Number
	rw := d.Mode == string(types.VirtualDiskModePersistent)
	ro := map[bool]string{true: "off", false: "on"}[rw]
	d.Export = filepath.Join(h.work, fmt.Sprintf("export-%d", d.Key))
	d.pidFile = d.Export + ".pid"
	if err := writeFile(d.Export, ""); err != nil {
		return err
	}
	local := h.lab.localPath(d.File)
	cmd := exec.Command("qemu-storage-daemon",
		"--blockdev", fmt.Sprintf("driver=file,node-name=f%d,filename=%s,read-only=%s", d.Key, local, ro),
		"--blockdev", fmt.Sprintf("driver=vmdk,node-name=d%d,file=f%d,read-only=%s", d.Key, d.Key, ro),
		"--export", fmt.Sprintf("type=fuse,id=e%d,node-name=d%d,mountpoint=%s,writable=%s", d.Key, d.Key, d.Export, map[bool]string{true: "on", false: "off"}[rw]),
		"--pidfile", d.pidFile, "--daemonize")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-storage-daemon: %v: %s", err, strings.TrimSpace(string(out)))
	}
	args := []string{"-f", "--show"}
	if !rw {
		args = append(args, "-r")
	}
	out, err := exec.Command("losetup", append(append(args, "--direct-io=on"), d.Export)...).CombinedOutput()
	d.Direct = err == nil
	if err != nil {
		out, err = exec.Command("losetup", append(args, d.Export)...).CombinedOutput()
	}
	if err != nil {
		h.stopQSD(d)
		return fmt.Errorf("losetup %s: %v: %s", d.Export, err, strings.TrimSpace(string(out)))
	}
	d.Loop = strings.TrimSpace(string(out))
	name := filepath.Base(d.Loop)
	h.makeDevice(host, d.Unit, name, d.Capacity)
	node := filepath.Join(h.dev, name)
	_ = os.Remove(node)
	_ = os.Symlink(d.Loop, node)
	if h.decoy {
		// Same unit and size on an ata host: only the PCI slot tells.
		d.Decoy = h.devName(h.hosts[1].Number, d.Unit)
		h.makeDevice(&h.hosts[1], d.Unit, fmt.Sprintf("sdz%d", d.Key%100), d.Capacity)
	}
	d.Visible = true
	h.logf("disk %d (%s, %s): SCSI %s, block %s over %s (qemu-storage-daemon, direct-io %v)", d.Key, d.File, d.Mode, h.devName(d.Host, d.Unit), name, d.Export, d.Direct)
	return nil
}

func (h *hotaddLab) stopQSD(d *hotDisk) {
	b, err := os.ReadFile(d.pidFile)
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	// Daemonized: its parent is init, so it may stay a zombie a while.
	for i := 0; i < 250; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = os.Remove(d.pidFile)
}

// tearDown: the device of D gone.  Called with h.mu held.
func (h *hotaddLab) tearDown(d *hotDisk) {
	if d.Visible {
		h.removeDevice(d.Host, d.Unit)
		if d.Decoy != "" {
			h.removeDevice(h.hosts[1].Number, d.Unit)
		}
	}
	if d.Loop != "" {
		_ = os.Remove(filepath.Join(h.dev, filepath.Base(d.Loop)))
		if out, err := exec.Command("losetup", "-d", d.Loop).CombinedOutput(); err != nil {
			h.logf("losetup -d %s: %v: %s", d.Loop, err, strings.TrimSpace(string(out)))
		}
		d.Loop = ""
	}
	h.stopQSD(d)
	if d.Export != "" {
		_ = os.Remove(d.Export)
	}
	d.Visible = false
}

func (h *hotaddLab) off() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop != nil {
		close(h.stop)
		h.stop = nil
	}
	for _, d := range h.disks {
		h.tearDown(d)
	}
	h.disks = map[int32]*hotDisk{}
	h.proxy = nil
	h.hide = 0
}

// hotaddPre checks a ReconfigVM_Task on the proxy before the simulator
// runs it: a removed disk whose SCSI device is still there is refused.
// True when it answered.
func (l *Lab) hotaddPre(w http.ResponseWriter, req *types.ReconfigVM_Task, this types.ManagedObjectReference) bool {
	hot.mu.Lock()
	defer hot.mu.Unlock()
	if hot.proxy == nil || hot.proxy.ref != this {
		return false
	}
	for _, dc := range req.Spec.DeviceChange {
		spec := dc.GetVirtualDeviceConfigSpec()
		if spec.Operation != types.VirtualDeviceConfigSpecOperationRemove {
			continue
		}
		d := hot.disks[spec.Device.GetVirtualDevice().Key]
		if d == nil || !d.Visible || d.Deleted {
			continue
		}
		hot.Bad++
		hot.logf("disk %d removed while SCSI device %s is still in the guest: refused", d.Key, hot.devName(d.Host, d.Unit))
		l.failTask(w, hot.proxy.obj, "ReconfigVM_Task", &types.SystemError{Reason: fmt.Sprintf(
			"vmdkfs-lab: disk %d is removed while its SCSI device %s is still present in the guest (write 1 to its delete file first)",
			d.Key, hot.devName(d.Host, d.Unit))})
		return true
	}
	return false
}

// hotaddPost records the disks added to and removed from the proxy.
func (l *Lab) hotaddPost(req *types.ReconfigVM_Task, this types.ManagedObjectReference, rec *httptest.ResponseRecorder) {
	hot.mu.Lock()
	defer hot.mu.Unlock()
	if hot.proxy == nil || hot.proxy.ref != this || !taskOK(recordedTask(rec)) {
		return
	}
	devs := currentDevices(hot.proxy)
	for _, dc := range req.Spec.DeviceChange {
		spec := dc.GetVirtualDeviceConfigSpec()
		vd := spec.Device.GetVirtualDevice()
		switch spec.Operation {
		case types.VirtualDeviceConfigSpecOperationAdd:
			if _, ok := spec.Device.(*types.VirtualDisk); !ok || spec.FileOperation != "" || vd.UnitNumber == nil {
				continue
			}
			for _, d := range devs {
				disk, ok := d.(*types.VirtualDisk)
				if !ok || disk.ControllerKey != vd.ControllerKey || disk.UnitNumber == nil || *disk.UnitNumber != *vd.UnitNumber {
					continue
				}
				b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
				if !ok {
					continue
				}
				hd := &hotDisk{Key: disk.Key, CtlKey: disk.ControllerKey, Unit: *disk.UnitNumber, File: b.FileName, Mode: b.DiskMode, Capacity: disk.CapacityInBytes}
				if hd.Capacity == 0 {
					hd.Capacity = disk.CapacityInKB * 1024
				}
				if disk.DeviceInfo != nil {
					hd.Label = disk.DeviceInfo.GetDescription().Label
				}
				if hot.hide > 0 {
					hd.Hidden = true
					hot.hide--
				}
				hot.disks[disk.Key] = hd
				hot.Attaches++
				hot.logf("disk %d attached: %s at controller %d unit %d, %s, \"%s\"", hd.Key, hd.File, hd.CtlKey, hd.Unit, hd.Mode, hd.Label)
			}
		case types.VirtualDeviceConfigSpecOperationRemove:
			if d := hot.disks[vd.Key]; d != nil {
				hot.Removes++
				hot.tearDown(d)
				delete(hot.disks, vd.Key)
				hot.logf("disk %d removed (%s)", d.Key, map[bool]string{true: "after its delete", false: "never scanned"}[d.Deleted])
			}
		}
	}
}

// hotFill puts placeholder disks on the proxy's first controller.
func (l *Lab) hotFill(units string) error {
	hot.mu.Lock()
	v := hot.proxy
	hot.mu.Unlock()
	if v == nil {
		return fmt.Errorf("no proxy: /lab/hotadd?proxy= first")
	}
	devs := currentDevices(v)
	ctls := scsiControllers(devs)
	if len(ctls) == 0 {
		return fmt.Errorf("the proxy has no SCSI controller")
	}
	ck := ctls[0].GetVirtualSCSIController().Key
	for _, s := range strings.Split(units, ",") {
		u, err := strconv.Atoi(s)
		if err != nil || u < 0 || u > 15 {
			return fmt.Errorf("fill=%s: units 0-15", units)
		}
		unit := int32(u)
		key := int32(2900 + u)
		devs = append(devs, &types.VirtualDisk{
			VirtualDevice: types.VirtualDevice{
				Key: key, ControllerKey: ck, UnitNumber: &unit,
				DeviceInfo: &types.Description{Label: fmt.Sprintf("Hard disk filler %d", u), Summary: "placeholder"},
				Backing: &types.VirtualDiskFlatVer2BackingInfo{
					VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: fmt.Sprintf("[%s] %s/filler-%d.vmdk", l.dsName, v.name, u)},
					DiskMode:                     string(types.VirtualDiskModePersistent),
				},
			},
			CapacityInKB: 1024, CapacityInBytes: 1 << 20,
		})
		hot.mu.Lock()
		hot.fillers = append(hot.fillers, key)
		hot.mu.Unlock()
	}
	setDevices(v, devs)
	return nil
}

func (l *Lab) hotUnfill() {
	hot.mu.Lock()
	v := hot.proxy
	fill := map[int32]bool{}
	for _, k := range hot.fillers {
		fill[k] = true
	}
	hot.fillers = nil
	hot.mu.Unlock()
	if v == nil {
		return
	}
	var keep []types.BaseVirtualDevice
	for _, d := range currentDevices(v) {
		if !fill[d.GetVirtualDevice().Key] {
			keep = append(keep, d)
		}
	}
	setDevices(v, keep)
}
