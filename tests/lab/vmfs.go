package main

// /lab/vmfs: the lab's datastore reported as a VMFS datastore, as vCenter
// reports a datastore on a SAN LUN, so that a client can find the LUN
// (vmdkfs's san transport reads Datastore.info.vmfs.extent).
//
// SIMULATED: vcsim's datastores are local folders (LocalDatastoreInfo,
// summary.type "OTHER").  After POST /lab/vmfs the datastore's info is a
// VmfsDatastoreInfo whose vmfs (HostVmfsVolume) holds whatever the test
// says: the VMFS uuid, major version, extents (diskName = the LUN's
// canonical name, partition) and block size.  There is no storage stack:
// the lab never looks at the LUN; the test packs the datastore folder into
// a VMFS image itself and attaches it where it likes.  The datastore's
// files stay in its local folder (info.url keeps that local path, which
// vcsim uses for every file operation: /folder, the datastore browser,
// NFC), so nothing else changes.  Each host mounting the datastore also
// gets a HostScsiDisk per extent disk in config.storageDevice.scsiLun
// (and in its HostStorageSystem's storageDeviceInfo), with the
// canonicalName, uuid and descriptors an ESXi host shows for a VMware
// virtual disk on a SAN (no durableName, see scsiDisk); no multipath or
// SCSI topology entry, no config.fileSystemVolume.mountInfo.

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// vmfsExtent is one extent of the volume: a partition of a LUN.
type vmfsExtent struct {
	DiskName  string `json:"diskName"`
	Partition int32  `json:"partition"`
}

// vmfsRequest is the body of POST /lab/vmfs (or its query parameters).
type vmfsRequest struct {
	Datastore   string       `json:"datastore"`
	UUID        string       `json:"uuid"`
	Version     int32        `json:"version"`
	Extents     []vmfsExtent `json:"extents"`
	BlockSizeMb int32        `json:"blockSizeMb"`
	Name        string       `json:"name"`
	Capacity    int64        `json:"capacity"` // bytes; default the datastore's summary.capacity
	Off         bool         `json:"off"`
}

// vmfsSaved is what a datastore was before /lab/vmfs, to go back to it.
type vmfsSaved struct {
	Request     vmfsRequest                  `json:"request"`
	Info        types.BaseDatastoreInfo      `json:"-"`
	SummaryType string                       `json:"-"`
	Hosts       []vmfsSavedHost              `json:"-"`
	Time        time.Time                    `json:"time"`
	Ref         types.ManagedObjectReference `json:"datastore"`
}

type vmfsSavedHost struct {
	Host          *simulator.HostSystem
	StorageDevice *types.HostStorageDeviceInfo
	StorageSystem *simulator.HostStorageSystem
	SystemInfo    *types.HostStorageDeviceInfo
}

var (
	vmfsUUIDRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	diskNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.:_-]*$`)
)

// Limits ESXi reports for VMFS5/VMFS6 with 1 MB blocks (typical values).
const (
	vmfsMaxBlocks      = 63963136
	vmfsMaxFileSize5   = 69201586814976 // 62.94 TiB
	vmfsMaxFileSize6   = 70368744177664 // 64 TiB
	vmfsMaxVirtualDisk = 68169720922112 // 62 TiB
)

func (l *Lab) findDatastore(s string) *simulator.Datastore {
	if s == "" {
		s = l.dsName
	}
	for _, e := range simulator.Map.All("Datastore") {
		ds := e.(*simulator.Datastore)
		if ds.Name == s || ds.Self.Value == s {
			return ds
		}
	}
	return nil
}

// parseVMFSRequest reads a JSON body, else the query (or form) parameters
// (datastore, uuid, version, extent=DISK:PART (repeated), blockSizeMb,
// name, capacity, off).
func parseVMFSRequest(r *http.Request) (vmfsRequest, error) {
	var req vmfsRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return req, err
	}
	if strings.HasPrefix(strings.TrimSpace(string(body)), "{") { // JSON, whatever the Content-Type
		d := json.NewDecoder(strings.NewReader(string(body)))
		d.DisallowUnknownFields()
		if err := d.Decode(&req); err != nil {
			return req, fmt.Errorf("JSON body: %v", err)
		}
		if ds := r.URL.Query().Get("datastore"); ds != "" && req.Datastore == "" {
			req.Datastore = ds
		}
		return req, nil
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	req.Datastore = r.FormValue("datastore")
	req.UUID = r.FormValue("uuid")
	req.Name = r.FormValue("name")
	for _, p := range []struct {
		name string
		dst  *int32
	}{{"version", &req.Version}, {"blockSizeMb", &req.BlockSizeMb}} {
		if s := r.FormValue(p.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 32)
			if err != nil {
				return req, fmt.Errorf("%s: %q", p.name, s)
			}
			*p.dst = int32(n)
		}
	}
	if s := r.FormValue("capacity"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return req, fmt.Errorf("capacity: %q", s)
		}
		req.Capacity = n
	}
	if s := r.FormValue("off"); s != "" && s != "0" && s != "false" {
		req.Off = true
	}
	for _, e := range r.Form["extent"] {
		i := strings.LastIndex(e, ":")
		if i < 0 {
			return req, fmt.Errorf("extent=DISKNAME:PARTITION, not %q", e)
		}
		n, err := strconv.ParseInt(e[i+1:], 10, 32)
		if err != nil {
			return req, fmt.Errorf("extent %q: partition", e)
		}
		req.Extents = append(req.Extents, vmfsExtent{DiskName: e[:i], Partition: int32(n)})
	}
	return req, nil
}

func (req *vmfsRequest) check() error {
	req.UUID = strings.ToLower(req.UUID)
	if !vmfsUUIDRe.MatchString(req.UUID) {
		return fmt.Errorf("uuid: %q is not a VMFS uuid (xxxxxxxx-xxxxxxxx-xxxx-xxxxxxxxxxxx, hex)", req.UUID)
	}
	if req.Version != 5 && req.Version != 6 {
		return fmt.Errorf("version: %d (5 or 6)", req.Version)
	}
	if len(req.Extents) == 0 {
		return fmt.Errorf("extents: at least one {\"diskName\": ..., \"partition\": N}")
	}
	for _, e := range req.Extents {
		if !diskNameRe.MatchString(e.DiskName) {
			return fmt.Errorf("extents: diskName %q", e.DiskName)
		}
		if e.Partition < 0 {
			return fmt.Errorf("extents: partition %d", e.Partition)
		}
	}
	if req.BlockSizeMb == 0 {
		req.BlockSizeMb = 1
	}
	if req.BlockSizeMb < 0 || req.BlockSizeMb > 8 {
		return fmt.Errorf("blockSizeMb: %d", req.BlockSizeMb)
	}
	if req.Capacity < 0 {
		return fmt.Errorf("capacity: %d", req.Capacity)
	}
	return nil
}

func (l *Lab) handleVMFS(w http.ResponseWriter, r *http.Request) {
	req, err := parseVMFSRequest(r)
	if err != nil {
		bad(w, "%v", err)
		return
	}
	if r.Method == http.MethodDelete {
		req.Off = true
	}
	ds := l.findDatastore(req.Datastore)
	if ds == nil {
		bad(w, "datastore %q: no such datastore", req.Datastore)
		return
	}
	if req.Off {
		l.vmfsOff(ds)
		ok(w, map[string]interface{}{"vmfs": l.vmfsState()})
		return
	}
	if r.Method == http.MethodGet && req.UUID == "" {
		ok(w, map[string]interface{}{"vmfs": l.vmfsState()})
		return
	}
	if err := req.check(); err != nil {
		bad(w, "%v (want {\"datastore\": NAME, \"uuid\": \"xxxxxxxx-xxxxxxxx-xxxx-xxxxxxxxxxxx\", \"version\": 5|6, \"extents\": [{\"diskName\": \"naa...\", \"partition\": 1}], \"blockSizeMb\": 1, \"name\": NAME, \"capacity\": BYTES})", err)
		return
	}
	info := l.vmfsOn(ds, req)
	ok(w, map[string]interface{}{"vmfs": l.vmfsState(), "info": info})
}

// vmfsOn makes ds a VMFS datastore as req says.
func (l *Lab) vmfsOn(ds *simulator.Datastore, req vmfsRequest) *types.VmfsDatastoreInfo {
	l.mu.Lock()
	saved := l.vmfs[ds.Self]
	l.mu.Unlock()

	var info *types.VmfsDatastoreInfo
	var hosts []types.ManagedObjectReference
	simulator.Map.WithLock(ds, func() {
		if saved == nil {
			saved = &vmfsSaved{Info: ds.Info, SummaryType: ds.Summary.Type, Ref: ds.Self}
		}
		cur := ds.Info.GetDatastoreInfo()
		capacity := req.Capacity
		if capacity == 0 {
			capacity = ds.Summary.Capacity
		}
		name := req.Name
		if name == "" {
			name = ds.Name
		}
		now := time.Now()
		vol := &types.HostVmfsVolume{
			HostFileSystemVolume: types.HostFileSystemVolume{
				Type:     string(types.HostFileSystemVolumeFileSystemTypeVMFS),
				Name:     name,
				Capacity: capacity,
			},
			BlockSizeMb:    req.BlockSizeMb,
			BlockSize:      req.BlockSizeMb * 1024,
			MaxBlocks:      vmfsMaxBlocks,
			MajorVersion:   req.Version,
			Version:        map[int32]string{5: "5.81", 6: "6.82"}[req.Version],
			Uuid:           req.UUID,
			VmfsUpgradable: false,
			Ssd:            types.NewBool(false),
			Local:          types.NewBool(false),
			ScsiDiskType:   "native512",
		}
		if req.Version == 6 {
			// VMFS6 has automatic space reclamation (vSphere 6.5 on).
			vol.UnmapGranularity = 1024
			vol.UnmapPriority = "low"
		}
		for _, e := range req.Extents {
			vol.Extent = append(vol.Extent, types.HostScsiDiskPartition{DiskName: e.DiskName, Partition: e.Partition})
		}
		maxFile := int64(vmfsMaxFileSize5)
		if req.Version == 6 {
			maxFile = vmfsMaxFileSize6
		}
		info = &types.VmfsDatastoreInfo{
			DatastoreInfo: types.DatastoreInfo{
				Name:                   ds.Name,
				Url:                    cur.Url, // the local folder: vcsim's file operations use it
				FreeSpace:              cur.FreeSpace,
				MaxFileSize:            maxFile,
				MaxVirtualDiskCapacity: vmfsMaxVirtualDisk,
				MaxMemoryFileSize:      maxFile,
				Timestamp:              &now,
			},
			MaxPhysicalRDMFileSize: maxFile,
			MaxVirtualRDMFileSize:  vmfsMaxVirtualDisk,
			Vmfs:                   vol,
		}
		simulator.Map.Update(ds, []types.PropertyChange{
			{Name: "info", Val: info},
			{Name: "summary.type", Val: string(types.HostFileSystemVolumeFileSystemTypeVMFS)},
		})
		for _, m := range ds.Host {
			hosts = append(hosts, m.Key)
		}
	})

	// The hosts' SCSI disks: back to what they were, then the extents' LUNs.
	l.restoreHosts(saved)
	saved.Hosts = nil
	for _, ref := range hosts {
		h, okh := simulator.Map.Get(ref).(*simulator.HostSystem)
		if !okh {
			continue
		}
		sh := vmfsSavedHost{Host: h}
		var devs *types.HostStorageDeviceInfo
		simulator.Map.WithLock(h, func() {
			if h.Config == nil {
				return
			}
			sh.StorageDevice = h.Config.StorageDevice
			if h.Config.StorageDevice != nil {
				devs = deepCopy(h.Config.StorageDevice)
			} else {
				devs = &types.HostStorageDeviceInfo{}
			}
			seen := map[string]bool{}
			for _, e := range req.Extents {
				if seen[e.DiskName] {
					continue
				}
				seen[e.DiskName] = true
				devs.ScsiLun = append(devs.ScsiLun, scsiDisk(e.DiskName, info.Vmfs.Capacity))
			}
			simulator.Map.Update(h, []types.PropertyChange{{Name: "config.storageDevice", Val: devs}})
		})
		if devs != nil && h.ConfigManager.StorageSystem != nil {
			if ss, okss := simulator.Map.Get(*h.ConfigManager.StorageSystem).(*simulator.HostStorageSystem); okss {
				simulator.Map.WithLock(ss, func() {
					sh.StorageSystem = ss
					sh.SystemInfo = ss.StorageDeviceInfo
					simulator.Map.Update(ss, []types.PropertyChange{{Name: "storageDeviceInfo", Val: devs}})
				})
			}
		}
		saved.Hosts = append(saved.Hosts, sh)
	}

	saved.Request = req
	saved.Request.Datastore = ds.Name
	saved.Time = time.Now()
	l.mu.Lock()
	l.vmfs[ds.Self] = saved
	l.mu.Unlock()
	return info
}

// vmfsOff gives ds back its local datastore info (with the current free
// space) and the hosts their SCSI disks as they were.
func (l *Lab) vmfsOff(ds *simulator.Datastore) {
	l.mu.Lock()
	saved := l.vmfs[ds.Self]
	delete(l.vmfs, ds.Self)
	l.mu.Unlock()
	if saved == nil {
		return
	}
	simulator.Map.WithLock(ds, func() {
		cur := *ds.Info.GetDatastoreInfo()
		info := saved.Info
		if li, okl := info.(*types.LocalDatastoreInfo); okl {
			n := *li
			n.FreeSpace = cur.FreeSpace
			info = &n
		}
		simulator.Map.Update(ds, []types.PropertyChange{
			{Name: "info", Val: info},
			{Name: "summary.type", Val: saved.SummaryType},
		})
	})
	l.restoreHosts(saved)
}

func (l *Lab) restoreHosts(saved *vmfsSaved) {
	for _, sh := range saved.Hosts {
		sh := sh
		simulator.Map.WithLock(sh.Host, func() {
			simulator.Map.Update(sh.Host, []types.PropertyChange{{Name: "config.storageDevice", Val: sh.StorageDevice}})
		})
		if sh.StorageSystem != nil {
			simulator.Map.WithLock(sh.StorageSystem, func() {
				simulator.Map.Update(sh.StorageSystem, []types.PropertyChange{{Name: "storageDeviceInfo", Val: sh.SystemInfo}})
			})
		}
	}
}

// vmfsState is /lab/state's "vmfs": the datastores reported as VMFS.
func (l *Lab) vmfsState() []vmfsRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []vmfsRequest{}
	for _, s := range l.vmfs {
		out = append(out, s.Request)
	}
	return out
}

// scsiDisk is the HostScsiDisk an ESXi host lists for a LUN named
// diskName (a VMware virtual disk on a SAN: vendor "VMware", model
// "Virtual disk").  For an naa.* name the uuid is "0200000000" + the NAA
// id + the model's first 6 bytes in hex, as ESXi builds its vml. names.
// No durableName: vcsim's encoder writes a []byte as raw bytes in one
// element (not XML), where vSphere sends one <data> per byte.
func scsiDisk(diskName string, capacity int64) *types.HostScsiDisk {
	model := "Virtual disk    "
	id := strings.ToLower(strings.TrimPrefix(diskName, "naa."))
	if _, err := hex.DecodeString(id); err != nil || !strings.HasPrefix(diskName, "naa.") {
		id = hex.EncodeToString([]byte(diskName))
	}
	uuid := "0200000000" + id + hex.EncodeToString([]byte(model[:6]))
	blocks := capacity / 512
	return &types.HostScsiDisk{
		ScsiLun: types.ScsiLun{
			HostDevice: types.HostDevice{
				DeviceName: "/vmfs/devices/disks/" + diskName,
				DeviceType: "disk",
			},
			Key:  "key-vim.host.ScsiDisk-" + uuid,
			Uuid: uuid,
			Descriptor: []types.ScsiLunDescriptor{
				{Quality: "highQuality", Id: diskName},
				{Quality: "highQuality", Id: "vml." + uuid},
				{Quality: "mediumQuality", Id: uuid},
			},
			CanonicalName:    diskName,
			DisplayName:      "VMware Fibre Channel Disk (" + diskName + ")",
			LunType:          "disk",
			Vendor:           "VMware  ",
			Model:            model,
			Revision:         "2.0 ",
			ScsiLevel:        6,
			SerialNumber:     "unavailable",
			QueueDepth:       64,
			OperationalState: []string{"ok"},
			Capabilities:     &types.ScsiLunCapabilities{UpdateDisplayNameSupported: true},
			VStorageSupport:  "vStorageUnsupported",
			ProtocolEndpoint: types.NewBool(false),
		},
		Capacity:              types.HostDiskDimensionsLba{BlockSize: 512, Block: blocks},
		DevicePath:            "/vmfs/devices/disks/" + diskName,
		Ssd:                   types.NewBool(false),
		LocalDisk:             types.NewBool(false),
		EmulatedDIXDIFEnabled: types.NewBool(false),
		ScsiDiskType:          "native512",
	}
}
