package main

// SIMULATED: the NFC session after authd's PROXY: the classic handshake of
// 264-byte messages, then the AIO session, as OpenVixDiskLib recorded VDDK
// and ESXi speaking them (docs/nfc_open.md, nfc_read.md, nfc_write.md).
// Every message the client sends goes through the conformance checker
// (nfc_conform.go) first; in strict mode one that departs from the
// records is refused.

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	mrand "math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	nfcMsgLen   = 264
	nfcAIOMagic = 0xA100DA7A
	nfcProtoVer = 11 // the server version ESXi 8 answers

	aioError        = 1
	aioOpenSession  = 2
	aioCloseSession = 3
	aioOpenFile     = 4
	aioCloseFile    = 5
	aioIO           = 7
	aioSetSockOpts  = 9
	aioDDBGet       = 11
	aioSetResPool   = 22
)

type nfcConn struct {
	s       *nfcServer
	raw     net.Conn
	flush   func() error  // after each write of rw (batchConn under nbdssl)
	rw      io.ReadWriter // raw (nbd) or the second TLS session (nbdssl)
	br      *bufio.Reader // rw's AIO messages (the reader's, then serveAIO's)
	ticket  *nfcTicket
	mode    string
	peer    string
	k       *nfcConform // the conformance checker of this connection
	bufSize int
	handles map[uint64]*nfcHandle
	writes  map[uint32]*pendingWrite
	dead    bool
	cut     bool  // the cut knob half-closed the link
	rerr    error // why the reader stopped
	rbad    bool  // ... on a malformed message (rhead its header)
	rhead   [16]byte
	out     []byte     // read replies being built (reused)
	frags   []fragment // their fragments (reused)
	lz      *fastlzEnc // FastLZ read replies (made at the first)
}

type aioMsg struct {
	typ, op uint32
	payload []byte
	extra   []byte
	checked bool   // the checker has seen it
	dep     string // what departs from the records ("": nothing)
}

type pendingWrite struct {
	h       *nfcHandle
	off     int64
	total   uint32
	buf     []byte
	got     uint32
	errCode uint64
	errText string
	strict  bool // refused by strict mode
}

func (c *nfcConn) logf(format string, a ...interface{}) {
	log.Printf("nfc %s (%s): %s", c.peer, c.mode, fmt.Sprintf(format, a...))
}

func (c *nfcConn) run() {
	defer c.closeAll()
	if err := c.handshake(); err != nil {
		if err != io.EOF {
			c.logf("NFC handshake: %v", err)
		}
		return
	}
	c.s.stat(func(st *nfcStats) { st.Sessions++ })
	c.serveAIO()
}

// ---- the classic handshake ----

func (c *nfcConn) send264(typ uint32, fill func(m []byte)) error {
	m := make([]byte, nfcMsgLen)
	put32(m, typ)
	if fill != nil {
		fill(m)
	}
	_, err := c.rw.Write(m) // one message, one write (one TLS record under nbdssl)
	if err == nil {
		err = c.flush()
	}
	return err
}

// handshake: C 43 (tag), C 33 (session parameters), S 36, C 51
// (version), S 51, C 54 (+ client name and operation as a trailer), C 55
// (features), C 52, S 52.
//
// The 36 goes out as soon as the 33 arrives, as recorded
// (docs/nfc_open.md, "Handshake order": "C: 33 / S: 36 / C: 51"; default
// params_reply=early).  /lab/nfc?params_reply=after_version answers 33
// only once 51 has arrived, as nfc-protocol.md (vectura) has it; a client
// that waits for 36 before sending 51 then hangs, one that sends 43, 33,
// 51 before reading works with both.  An unexpected message gets a type 4
// and the link closes; in strict mode so does one that departs from the
// records.
func (c *nfcConn) handshake() error {
	m := make([]byte, nfcMsgLen)
	gotParams, sent36, gotVersion := false, false, false
	early := c.s.knob().ParamsReply == "early"
	fail := func(format string, a ...interface{}) error {
		_ = c.send264(4, nil)
		return fmt.Errorf(format, a...)
	}
	params := func() error {
		sent36 = true
		return c.send264(36, func(m []byte) { put32(m[16:], 1) })
	}
	for {
		if _, err := io.ReadFull(c.rw, m); err != nil {
			return err
		}
		typ := le32(m)
		var trailer []byte
		if typ == 54 {
			a, b := le32(m[4:]), le32(m[8:])
			if a > 512 || b > 512 {
				c.k.msg(m, nil)
				return fail("connection data lengths %d, %d", a, b)
			}
			// The client name and the operation follow as raw bytes, not
			// inside the 264-byte message.
			trailer = make([]byte, a+b)
			if _, err := io.ReadFull(c.rw, trailer); err != nil {
				return err
			}
			c.logf("client %q, operation %q", trailer[:a], trailer[a:])
		}
		if dep := c.k.msg(m, trailer); dep != "" && c.k.strict() {
			return fail("vmdkfs-lab strict: %s", dep)
		}
		switch typ {
		case 43: // the client's tag, at offset 4
		case 33:
			gotParams = true
			if early {
				if err := params(); err != nil {
					return err
				}
			}
		case 51:
			if !gotParams {
				return fail("version (51) before session parameters (33)")
			}
			if !sent36 {
				if err := params(); err != nil {
					return err
				}
			}
			gotVersion = true
			if err := c.send264(51, func(m []byte) { put32(m[4:], nfcProtoVer) }); err != nil {
				return err
			}
		case 54: // read above
		case 55: // features (3: interruption | switch)
		case 52:
			if !gotVersion {
				return fail("AIO session (52) before the version exchange")
			}
			return c.send264(52, nil)
		case 4:
			return io.EOF // session complete
		default:
			return fail("unexpected handshake message type %d", typ)
		}
	}
}

// ---- AIO ----

func (c *nfcConn) send(typ, op uint32, payload, extra []byte) error {
	b := make([]byte, 16, 16+len(payload)+len(extra))
	put32(b[0:], nfcAIOMagic)
	put32(b[4:], typ)
	put32(b[8:], uint32(len(payload)))
	put32(b[12:], op)
	b = append(append(b, payload...), extra...)
	return c.write(b)
}

// write sends b in one write (one TLS record per 16 KiB under nbdssl,
// gathered into one system call by batchConn).
func (c *nfcConn) write(b []byte) error {
	_, err := c.rw.Write(b)
	if err == nil {
		err = c.flush()
	}
	if err != nil {
		c.dead = true
	}
	return err
}

// errorRecord sends an ERROR record: u64 code, u32 0, u32 text length,
// then the text (not counted in the size), with the request's opId.
func (c *nfcConn) errorRecord(op uint32, code uint64, text string) {
	p := make([]byte, 16)
	put64(p, code)
	put32(p[12:], uint32(len(text)))
	c.s.stat(func(st *nfcStats) { st.ErrorRecords++ })
	_ = c.send(aioError, op, p, []byte(text))
}

// refuse answers a non-IO request with an ERROR record, then the reply
// itself (payload: the code at 0 when it is long enough).
//
// GUESS: vectura reads an ERROR record then the reply; OpenVixDiskLib stops
// at the ERROR record (and drops the link).  IO requests get the ERROR
// record only (vectura does not reuse the link after a failed read); the
// session stays usable.
func (c *nfcConn) refuse(m *aioMsg, replyLen int, code uint64, text string) {
	c.logf("refusing message type %d: %d %s", m.typ, code, text)
	c.errorRecord(m.op, code, text)
	p := make([]byte, replyLen)
	if replyLen >= 8 {
		put64(p, code)
	}
	_ = c.send(m.typ, m.op, p, nil)
}

func ioIsRead(m *aioMsg) bool { return len(m.payload) >= 44 && uint32(le64(m.payload[8:])) == 1 }

// reader decodes AIO messages into out.  The extras (not counted in the
// size) are: the path of OPEN_FILE ([0] length), the data of an IO write
// fragment ([36] wire length), the key of DDB_GET ([8] length).
func (c *nfcConn) reader(out chan<- *aioMsg) {
	defer close(out)
	maxExtra := uint32(c.s.knob().MaxIO)
	if maxExtra < nfcMaxBuf {
		maxExtra = nfcMaxBuf
	}
	for {
		var h [16]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			c.rerr = err
			return
		}
		if le32(h[:]) != nfcAIOMagic {
			c.rerr, c.rbad, c.rhead = fmt.Errorf("bad message magic %#08x", le32(h[:])), true, h
			return
		}
		m := &aioMsg{typ: le32(h[4:]), op: le32(h[12:])}
		size := le32(h[8:])
		if size > 4096 {
			c.rerr, c.rbad, c.rhead = fmt.Errorf("message type %d of %d bytes", m.typ, size), true, h
			return
		}
		m.payload = make([]byte, size)
		if _, err := io.ReadFull(c.br, m.payload); err != nil {
			c.rerr = err
			return
		}
		var elen, limit uint32
		switch {
		case m.typ == aioOpenFile && size >= 4:
			elen, limit = le32(m.payload), 4096
		case m.typ == aioIO && size >= 40 && !ioIsRead(m) && uint32(le64(m.payload[8:])) == 0:
			elen, limit = le32(m.payload[36:]), maxExtra
		case m.typ == aioDDBGet && size >= 12:
			elen, limit = le32(m.payload[8:]), 4096
		}
		if elen > limit {
			c.rerr, c.rbad, c.rhead = fmt.Errorf("message type %d announces %d bytes of extra", m.typ, elen), true, h
			return
		}
		if elen > 0 && m.typ == aioIO {
			if ms, stall := c.s.takeStall(); stall {
				// SIMULATED fault: the host stops reading before the
				// data of this write; the client's sends block once
				// the socket buffers are full, and its write timeout
				// must fire.  Then the link is dropped.
				time.Sleep(time.Duration(ms) * time.Millisecond)
				c.rerr = io.EOF
				return
			}
		}
		m.extra = make([]byte, elen)
		if _, err := io.ReadFull(c.br, m.extra); err != nil {
			c.rerr = err
			return
		}
		out <- m
		if m.typ == aioCloseSession {
			return // then a classic type 4 message, read by serveAIO
		}
	}
}

func (c *nfcConn) serveAIO() {
	msgs := make(chan *aioMsg, 64)
	c.br = bufio.NewReaderSize(c.rw, 64<<10)
	go c.reader(msgs)
	defer func() {
		if c.cut {
			// Half-closed: the peer reads what was sent, then EOF (a
			// close with unread input would reset the link and could
			// discard it).  Read on until the peer closes, a while at most.
			_ = c.raw.SetReadDeadline(time.Now().Add(5 * time.Second))
		} else {
			_ = c.raw.Close() // the reader may be waiting for the peer
		}
		for range msgs { // let the reader end
		}
		_ = c.raw.Close()
	}()
	var pushback *aioMsg
	for !c.dead {
		m := pushback
		pushback = nil
		if m == nil {
			var ok bool
			if m, ok = <-msgs; !ok {
				if c.rerr != nil && c.rerr != io.EOF {
					c.logf("%v", c.rerr)
				}
				if c.rbad {
					c.k.malformed(c.rhead, c.rerr)
				}
				return
			}
		}
		c.check(m)
		if m.dep != "" && c.k.strict() {
			c.refuseStrict(m)
			continue
		}
		switch m.typ {
		case aioOpenSession:
			c.openSession(m)
		case aioCloseSession:
			// Payload 4 bytes (OpenVixDiskLib) or 16 (vectura): the reply
			// echoes the size, zeros.  Then the client's classic type 4
			// (NFC_SESSION_COMPLETE) or nothing: the link closes.
			c.s.stat(func(st *nfcStats) { st.CloseSessionSize = len(m.payload) })
			_ = c.send(aioCloseSession, m.op, make([]byte, len(m.payload)), nil)
			_ = c.raw.SetReadDeadline(time.Now().Add(2 * time.Second))
			end := make([]byte, nfcMsgLen)
			if _, err := io.ReadFull(c.br, end); err == nil { // the reader has stopped
				if dep := c.k.msg(end, nil); dep != "" && c.k.strict() {
					_ = c.send264(4, nil)
				}
			}
			return
		case aioOpenFile:
			c.openFile(m)
		case aioCloseFile:
			if k := c.s.knob(); k.StallClose {
				// SIMULATED fault: the host never answers the close.
				time.Sleep(time.Duration(k.StallMs) * time.Millisecond)
				return
			}
			c.closeFile(m)
		case aioIO:
			if len(m.payload) < 44 || uint32(le64(m.payload[8:])) > 1 {
				c.errorRecord(m.op, nfcErrInvalid, "invalid IO request")
			} else if ioIsRead(m) {
				batch := []*aioMsg{m}
				if k := c.s.knob(); k.Shuffle {
					// Answer the reads in flight together, their fragments
					// interleaved and out of order.
				gather:
					for len(batch) < 32 && pushback == nil {
						select {
						case n, ok := <-msgs:
							if ok {
								c.check(n)
							}
							switch {
							case !ok:
								break gather
							case n.typ == aioIO && ioIsRead(n) && (n.dep == "" || !k.Strict):
								batch = append(batch, n)
							default:
								pushback = n
							}
						case <-time.After(5 * time.Millisecond):
							break gather
						}
					}
				}
				c.reads(batch)
			} else {
				c.writeFragment(m, "")
			}
		case aioSetSockOpts:
			// docs/nfc_write.md (at b11e109): "SET_SOCK_OPTS of 12 zero
			// bytes returns send/recv sizes 1675000 and a uint32 flag 1".
			// The offsets are inferred from that order: [0] send, [4]
			// receive, [8] the flag.
			p := make([]byte, 12)
			put32(p, 1675000)
			put32(p[4:], 1675000)
			put32(p[8:], 1)
			_ = c.send(m.typ, m.op, p, nil)
		case aioSetResPool:
			_ = c.send(m.typ, m.op, m.payload, nil)
		case aioDDBGet:
			c.ddbGet(m)
		default:
			// GET_FILE_INFO (10), QUERY_ALLOCATED_BLOCKS (13) and the rest.
			c.refuse(m, 0, nfcErrUnsupported, fmt.Sprintf("message type %d is not supported by vmdkfs-lab", m.typ))
		}
	}
}

// check runs the conformance checker on m once, in the order the
// messages came.
func (c *nfcConn) check(m *aioMsg) {
	if !m.checked {
		m.checked = true
		m.dep = c.k.aio(m)
	}
}

// refuseStrict answers a message that departs from the records, in strict
// mode: an ERROR record (code 3) naming the departure, nothing else; the
// message is not processed.  A write fragment refuses its whole write:
// one ERROR record once all its fragments are in, no acknowledgement.
//
// SIMULATED: the lab's strict mode (a real host may take such a message).
func (c *nfcConn) refuseStrict(m *aioMsg) {
	if m.typ == aioIO && len(m.payload) >= 44 && !ioIsRead(m) && uint32(le64(m.payload[8:])) == 0 {
		c.writeFragment(m, m.dep)
		return
	}
	c.logf("strict: refusing message type %d (opId %d)", m.typ, m.op)
	c.errorRecord(m.op, nfcErrInvalid, "vmdkfs-lab strict: "+m.dep)
}

// openSession: [4] buffer size in bytes (0: 64 KiB), [8] buffer count.
// The reply is 16 zero bytes and the host uses the requested size for the
// IO fragments; 2 MiB is accepted, 16 MiB refused (docs/nfc_open.md,
// "OPEN_SESSION / sockopts / resource pool").  GUESS: sizes between
// those, and sizes not a multiple of 512, are refused too.
func (c *nfcConn) openSession(m *aioMsg) {
	size := uint32(0)
	if len(m.payload) >= 8 {
		size = le32(m.payload[4:])
	}
	if size == 0 {
		size = nfcDefaultBuf
	}
	if size > nfcMaxBuf || size%512 != 0 {
		c.refuse(m, 16, nfcErrInvalid, fmt.Sprintf("invalid AIO buffer size %d", size))
		return
	}
	c.bufSize = int(size)
	_ = c.send(aioOpenSession, m.op, make([]byte, 16), nil)
}

// ---- OPEN_FILE / CLOSE_FILE ----

// normDSPath turns "[ds]  dir/f.vmdk" into "[ds] dir/f.vmdk".
func normDSPath(p string) string {
	p = strings.TrimSpace(p)
	if i := strings.IndexByte(p, ']'); strings.HasPrefix(p, "[") && i > 0 {
		return p[:i+1] + " " + strings.TrimSpace(p[i+1:])
	}
	return p
}

// nfcLinks lists the links of disk key (-1: every disk) of VM v, in its
// running chain and in every snapshot's chain: datastore path -> disk
// key.  running: the running (top) links.  Also the power state.
func (l *Lab) nfcLinks(v *labVM, key int32) (all, running map[string]int32, power types.VirtualMachinePowerState) {
	all, running = map[string]int32{}, map[string]int32{}
	add := func(cfg *types.VirtualMachineConfigInfo, top bool) {
		for _, d := range vmDisks(cfg) {
			b := flatBacking(d)
			if b == nil || (key >= 0 && d.Key != key) {
				continue
			}
			for _, f := range chain(b) {
				all[f] = d.Key
			}
			if top {
				running[b.FileName] = d.Key
			}
		}
	}
	simulator.Map.WithLock(v.obj, func() {
		add(v.obj.Config, true)
		power = v.obj.Runtime.PowerState
	})
	for _, ref := range snapshotRefs(v.obj) {
		if s := snapshotObj(ref); s != nil {
			simulator.Map.WithLock(s, func() { add(&s.Config, false) })
		}
	}
	return all, running, power
}

// openFile: 60-byte payload, [0] path length, [16] file type (2: disk),
// [20] flags (0x1e read-only, 0x1a read-write: bit 0x04 clear); the path
// follows.  The path must be a link of the ticket's disk (the running one
// or any snapshot's): the lab resolves that link's chain host-side.
//
// Reply (60 bytes): [0] u64 status, [8] u64 handle, [16] file type, [20]
// flags, [28] u64 capacity in bytes, [36] u32 sector size 512, [40] [44]
// [48] u32 geometry cylinders, heads, sectors (docs/nfc_open.md, newer
// version, "OPEN_FILE": "Physical geometry cylinders / heads / sectors").
func (c *nfcConn) openFile(m *aioMsg) {
	fail := func(code uint64, text string) {
		c.s.stat(func(st *nfcStats) { st.OpenErrors++ })
		c.refuse(m, 60, code, text)
	}
	if len(m.payload) < 24 {
		fail(nfcErrInvalid, "OPEN_FILE payload too short")
		return
	}
	path := normDSPath(string(m.extra))
	ftype, flags := le32(m.payload[16:]), le32(m.payload[20:])
	rw := flags&0x04 == 0
	t := c.ticket
	v := t.v
	if ftype != 2 {
		fail(nfcErrUnsupported, fmt.Sprintf("file type %d is not supported (only 2, a disk)", ftype))
		return
	}
	all, running, power := c.s.lab.nfcLinks(v, t.DiskKey)
	key, ok := all[path]
	if !ok {
		fail(nfcErrPermission, "permission check failed")
		return
	}
	_, isRunning := running[path]
	sparse := false
	if b := c.s.lab.backingOf(v, path); b != nil {
		sparse = b.Parent != nil || (b.ThinProvisioned != nil && *b.ThinProvisioned)
	}
	lockText := "DiskLib error 16392: Failed to lock the file"
	switch {
	case rw && !t.RW:
		// A read-only ticket used for writing: docs/nfc_auth.md, "AIO
		// error 0x0b (VIX_E_FILE_READ_ONLY)" (for an NfcGetVmFiles ticket).
		fail(nfcErrPermission, "The file is read-only")
		return
	case rw && !isRunning:
		// GUESS: a snapshot's link is a read-only parent: same refusal.
		fail(nfcErrPermission, "The file is read-only")
		return
	case rw && power != types.VirtualMachinePowerStatePoweredOff:
		fail(nfcErrLocked, lockText)
		return
	case !rw && isRunning && power != types.VirtualMachinePowerStatePoweredOff:
		// SIMULATED: the running link of a running VM is locked by it
		// (VDDK needs a snapshot to read a powered-on VM).  GUESS: the
		// code; the texts are the ones hosts were seen to send.
		if sparse {
			fail(nfcErrLocked, "Thin/TBZ/Sparse disks cannot be opened in multiwriter mode")
		} else {
			fail(nfcErrLocked, lockText)
		}
		return
	}
	if busy := c.s.openOn(path, rw); busy {
		fail(nfcErrLocked, lockText)
		return
	}
	h, err := c.s.materialise(c, v, path, key, rw)
	if err != nil {
		c.logf("open %s: %v", path, err)
		if os.IsNotExist(err) {
			fail(nfcErrNotFound, "The file does not exist")
		} else {
			fail(nfcErrNotFound, "Failed to open the disk: "+err.Error())
		}
		return
	}
	c.handles[h.ID] = h
	c.k.addHandle(h.ID)
	c.s.stat(func(st *nfcStats) { st.Opens++ })
	c.logf("opened %s (%s, handle %#x, %d bytes)", path, map[bool]string{true: "read-write", false: "read-only"}[rw], h.ID, h.Capacity)
	p := make([]byte, 60)
	put64(p[8:], h.ID)
	put32(p[16:], 2)
	put32(p[20:], flags)
	put64(p[28:], uint64(h.Capacity))
	put32(p[36:], 512)
	put32(p[40:], h.geometry[0])
	put32(p[44:], h.geometry[1])
	put32(p[48:], h.geometry[2])
	_ = c.send(aioOpenFile, m.op, p, nil)
}

// backingOf finds the backing node of datastore path in VM v's running
// chains or its snapshots' chains.
func (l *Lab) backingOf(v *labVM, path string) *backing {
	var found *backing
	look := func(cfg *types.VirtualMachineConfigInfo) {
		for _, d := range vmDisks(cfg) {
			for b := flatBacking(d); b != nil && found == nil; b = b.Parent {
				if b.FileName == path {
					cp := *b
					found = &cp
				}
			}
		}
	}
	simulator.Map.WithLock(v.obj, func() { look(v.obj.Config) })
	for _, ref := range snapshotRefs(v.obj) {
		if s := snapshotObj(ref); s != nil && found == nil {
			simulator.Map.WithLock(s, func() { look(&s.Config) })
		}
	}
	return found
}

// openOn reports whether opening path (rw or not) conflicts with a handle
// open now: a read-write open locks the link exclusively.
func (s *nfcServer) openOn(path string, rw bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.handles {
		if h.Path == path && (rw || h.RW) {
			return true
		}
	}
	return false
}

// materialise makes the handle: the link's chain as a raw file
// (qemu-img convert), its capacity and geometry.
func (s *nfcServer) materialise(c *nfcConn, v *labVM, path string, key int32, rw bool) (*nfcHandle, error) {
	local := s.lab.localPath(path)
	var id uint64
	for id == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = le64(b[:])
		s.mu.Lock()
		if s.handles[id] != nil {
			id = 0
		}
		s.mu.Unlock()
	}
	h := &nfcHandle{ID: id, Path: path, Local: local, VMName: v.name, DiskKey: key, RW: rw,
		Transport: c.mode, Opened: time.Now(), v: v,
		rawPath: filepath.Join(s.tmpDir, fmt.Sprintf("h%016x.raw", id))}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := os.Stat(local); err != nil {
		return nil, err
	}
	if err := run("qemu-img", "convert", "-U", "-f", "vmdk", "-O", "raw", local, h.rawPath); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(h.rawPath, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	h.raw, h.Capacity = f, st.Size()
	h.geometry = [3]uint32{uint32(h.Capacity / 512 / (16 * 63)), 16, 63}
	if text, err := readDescriptor(local); err == nil {
		for i, k := range []string{"ddb.geometry.cylinders", "ddb.geometry.heads", "ddb.geometry.sectors"} {
			if n, err := strconv.ParseUint(descValue(text, k), 10, 32); err == nil {
				h.geometry[i] = uint32(n)
			}
		}
	}
	s.mu.Lock()
	s.handles[id] = h
	s.mu.Unlock()
	return h, nil
}

// closeFile: payload the handle (8 bytes, as recorded: docs/nfc_open.md,
// "Close" and the AIO table; vectura adds 8 zero bytes).  GUESS: the
// reply echoes the size, zeros.
func (c *nfcConn) closeFile(m *aioMsg) {
	if len(m.payload) < 8 || c.handles[le64(m.payload)] == nil {
		c.refuse(m, len(m.payload), nfcErrInvalid, "invalid file handle")
		return
	}
	h := c.handles[le64(m.payload)]
	delete(c.handles, h.ID)
	c.s.closeHandle(h)
	c.s.stat(func(st *nfcStats) { st.CloseFileSize = len(m.payload) })
	_ = c.send(aioCloseFile, m.op, make([]byte, len(m.payload)), nil)
}

func (c *nfcConn) closeAll() {
	for id, h := range c.handles {
		delete(c.handles, id)
		c.s.closeHandle(h)
	}
}

// closeHandle drops the raw copy; after writes the disk's changeId moves on
// (once per open, as CBT does per change epoch).
func (s *nfcServer) closeHandle(h *nfcHandle) {
	s.mu.Lock()
	delete(s.handles, h.ID)
	s.mu.Unlock()
	_ = h.raw.Close()
	_ = os.Remove(h.rawPath)
	if !h.Wrote {
		return
	}
	v := h.v
	v.mu.Lock()
	defer v.mu.Unlock()
	devs := currentDevices(v)
	for _, d := range vmDisks(&types.VirtualMachineConfigInfo{Hardware: types.VirtualHardware{Device: devs}}) {
		if b := flatBacking(d); b != nil && b.FileName == h.Path {
			b.ChangeId = bumpChangeID(b.ChangeId)
		}
	}
	setDevices(v, devs)
	s.lab.relayout(v)
}

// ---- IO ----

// takeIOFault consumes an injected IO error, if one is pending.
func (s *nfcServer) takeIOFault() (uint64, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.knobs.ErrCount == 0 {
		return 0, "", false
	}
	if s.knobs.ErrCount > 0 {
		s.knobs.ErrCount--
	}
	return s.knobs.ErrCode, s.knobs.ErrText, true
}

// takeStall consumes an injected write stall, if one is pending, and
// gives its length in milliseconds.
func (s *nfcServer) takeStall() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.knobs.StallWrites == 0 {
		return 0, false
	}
	if s.knobs.StallWrites > 0 {
		s.knobs.StallWrites--
	}
	s.stats.Stalls++
	return s.knobs.StallMs, true
}

// takeCut: where in a batch of TOTAL bytes of reply data the link is to
// be cut (-1: not in it).  The cut knob counts reply bytes from when it was
// set, across reads: a batch wholly before it only moves it closer.
func (s *nfcServer) takeCut(total int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.knobs.Cut
	if n < 0 {
		return -1
	}
	if n >= total {
		s.knobs.Cut = n - total
		return -1
	}
	s.knobs.Cut = -1
	return n
}

func (c *nfcConn) delay(k *nfcKnobs) {
	if k.DelayMs > 0 {
		time.Sleep(time.Duration(k.DelayMs) * time.Millisecond)
	}
}

// checkIO validates a request's handle and range (maxIO: the max_io knob).
func (c *nfcConn) checkIO(handle uint64, off, n, maxIO int64) (*nfcHandle, uint64, string) {
	h := c.handles[handle]
	switch {
	case h == nil:
		return nil, nfcErrInvalid, "invalid file handle"
	case n <= 0 || n > maxIO:
		return nil, nfcErrInvalid, fmt.Sprintf("invalid IO length %d (at most %d)", n, maxIO)
	case off%512 != 0 || n%512 != 0:
		return nil, nfcErrInvalid, fmt.Sprintf("IO at %d of %d bytes is not sector-aligned", off, n)
	case off < 0 || off+n > h.Capacity:
		return nil, nfcErrInvalid, fmt.Sprintf("IO at %d of %d bytes is beyond the disk's %d bytes", off, n, h.Capacity)
	}
	return h, 0, ""
}

// readAt fills p from the handle's raw copy at off.  The copy is sparse
// (qemu-img convert leaves holes): the ranges that SEEK_DATA/SEEK_HOLE
// show as holes are zeroed here instead of read, as reading a hole makes
// the kernel allocate and clear page-cache pages, the lab's main cost.
func (h *nfcHandle) readAt(p []byte, off int64) error {
	end := off + int64(len(p))
	for pos := off; pos < end; {
		d, err := h.raw.Seek(pos, seekData)
		if err != nil || d >= end {
			if err != nil && !errors.Is(err, syscall.ENXIO) {
				// No SEEK_DATA here: read it all.
				_, err = h.raw.ReadAt(p[pos-off:], pos)
				return err
			}
			d = end // ENXIO: only a hole up to the end of the file
		}
		zero(p[pos-off : d-off])
		if d >= end {
			return nil
		}
		e, err := h.raw.Seek(d, seekHole)
		if err != nil || e > end {
			e = end
		}
		if _, err = h.raw.ReadAt(p[d-off:e-off], d); err != nil {
			return err
		}
		pos = e
	}
	return nil
}

const (
	seekData = 3 // SEEK_DATA, SEEK_HOLE (Linux): not in package syscall
	seekHole = 4
)

func zero(b []byte) {
	for i := range b {
		b[i] = 0 // compiled to a memclr
	}
}

// A reply fragment laid out in nfcConn.out: the 16-byte message header,
// the 44-byte IO payload, then the data (n bytes).
type fragment struct {
	at, n int
}

const fragHead = 16 + 44

// reads answers IO read requests: 44-byte request [0] handle, [8] u64
// direction 1 | compression << 32, [16] u64 offset, [24] u64 length.  Each
// reply fragment carries at most the session buffer: [0] u64 status 0,
// [8] u64 1 | compression << 32, [16] u64 request offset, [24] u32
// request length, [28] u32 offset of the fragment in the request, [32]
// u32 its length, [36] u32 wire length of the data that follows.  With
// shuffle on, the fragments of the batch go out in a random order.
//
// A read that asks for FastLZ (compression 2) is answered fragment by
// fragment as OpenVixDiskLib's docs/nfc_read.md records ("Reads with
// FASTLZ always *request* type 2.  The server may answer type 2 or fall
// back to type 0"; its table: "FASTLZ, data that shrinks": "Opcode type
// 2; extra is FastLZ of offset 32", "FASTLZ, incompressible": "Opcode
// type 0; extra is raw"): a fragment whose FastLZ block is shorter than
// its data goes as compression 2, [36] the block's size ("offset 36 =
// packed size"), the block as its extra; any other as compression 0, the
// same fragment as an uncompressed read's.  Level 2 for fragments of 64
// KiB or more, level 1 below ("64 KiB chunks use FastLZ level 2 ...
// Smaller chunks use level 1").  GUESS: other compression types (1 zlib,
// 3 SkipZ; the records have no read of theirs, strict mode refuses them)
// are answered uncompressed.
//
// The replies are built in one reused buffer, each fragment's data read
// straight into place behind its header, and go out in one write (a
// fragment a write with shuffle on); the knobs are read once per batch.
func (c *nfcConn) reads(batch []*aioMsg) {
	k := c.s.knob()
	out, frags := c.out[:0], c.frags[:0]
	var ios int
	var nbytes int64
	for _, m := range batch {
		off, n := int64(le64(m.payload[16:])), int64(le64(m.payload[24:]))
		if n > 1<<32-1 {
			n = -1
		}
		h, code, text := c.checkIO(le64(m.payload), off, n, k.MaxIO)
		if h == nil {
			c.errorRecord(m.op, code, text)
			continue
		}
		if k.ErrCount != 0 {
			if code, text, ok := c.s.takeIOFault(); ok {
				c.errorRecord(m.op, code, text)
				continue
			}
		}
		fastlz := le64(m.payload[8:])>>32 == 2
		if fastlz && c.lz == nil {
			c.lz = &fastlzEnc{}
		}
		bs := int64(c.bufSize)
		nf := int((n + bs - 1) / bs)
		start, first := len(out), len(frags)
		need := start + nf*fragHead + int(n)
		if cap(out) < need {
			grown := make([]byte, start, need+need/4)
			copy(grown, out)
			out = grown
		}
		out = out[:need]
		var err error
		at := start
		for fo := int64(0); fo < n && err == nil; fo += bs {
			fl := n - fo
			if fl > bs {
				fl = bs
			}
			b := out[at : at+fragHead+int(fl)]
			put32(b[0:], nfcAIOMagic)
			put32(b[4:], aioIO)
			put32(b[8:], 44)
			put32(b[12:], m.op)
			p := b[16:fragHead]
			put64(p[0:], 0)
			put64(p[8:], 1)
			put64(p[16:], uint64(off))
			put32(p[24:], uint32(n))
			put32(p[28:], uint32(fo))
			put32(p[32:], uint32(fl))
			put32(p[36:], uint32(fl))
			err = h.readAt(b[fragHead:], off+fo)
			wire := int(fl)
			if fastlz && err == nil {
				if z := c.lz.compress(b[fragHead:]); z != nil {
					// Shorter than the data: it takes the data's place.
					wire = copy(b[fragHead:], z)
					put64(p[8:], 1|2<<32)
					put32(p[36:], uint32(wire))
				}
			}
			frags = append(frags, fragment{at: at, n: wire})
			at += fragHead + wire
		}
		if err != nil {
			out, frags = out[:start], frags[:first]
			c.errorRecord(m.op, nfcErrNotFound, "read failed: "+err.Error())
			continue
		}
		out = out[:at] // shorter than planned when fragments were compressed
		ios++
		nbytes += n
		c.delay(&k)
	}
	if ios > 0 {
		c.s.stat(func(st *nfcStats) { st.IOs += ios; st.Reads += ios; st.BytesRead += nbytes })
	}
	// Keep the buffers for the next batch unless a big batch made them huge.
	if cap(out) <= 4*nfcDefaultMaxIO {
		c.out, c.frags = out, frags
	} else {
		c.out, c.frags = nil, nil
	}
	if len(frags) == 0 {
		return
	}
	shuffled := false
	if len(frags) > 1 && k.Shuffle {
		mrand.Shuffle(len(frags), func(i, j int) { frags[i], frags[j] = frags[j], frags[i] })
		shuffled = true
		inOrder := true
		for i, f := range frags {
			inOrder = inOrder && (i == 0 || f.at > frags[i-1].at)
		}
		if inOrder { // never in order
			frags[0], frags[len(frags)-1] = frags[len(frags)-1], frags[0]
		}
	}
	// What goes out: the fragments in order, up to the cut if one is set.
	n := len(frags)
	tail := -1 // bytes of fragment n's data sent before the cut
	var total int64
	for _, f := range frags {
		total += int64(f.n)
	}
	if cut := c.s.takeCut(total); cut >= 0 {
		for i, f := range frags {
			if int64(f.n) > cut {
				n, tail = i, int(cut)
				break
			}
			cut -= int64(f.n)
		}
	}
	var err error
	if !shuffled {
		end := len(out)
		if tail >= 0 {
			end = frags[n].at + fragHead + tail
		}
		err = c.write(out[:end])
	} else {
		for _, f := range frags[:n] {
			if err = c.write(out[f.at : f.at+fragHead+f.n]); err != nil {
				break
			}
		}
		if err == nil && tail >= 0 {
			f := frags[n]
			err = c.write(out[f.at : f.at+fragHead+tail])
		}
	}
	if err != nil || tail < 0 {
		return
	}
	// SIMULATED fault: the link drops in the middle of a read.
	c.s.stat(func(st *nfcStats) { st.Cuts++ })
	c.logf("cut: closing the connection in the middle of a read")
	if tc, ok := c.raw.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
		c.cut = true
	} else {
		_ = c.raw.Close()
	}
	c.dead = true
}

// fastlzEnc makes the FastLZ blocks of read replies.
//
// SIMULATED: the lab's own greedy encoder of the FastLZ block format
// (ariya/FastLZ, MIT), which any FastLZ decoder reads; its bytes need not
// be those a host's encoder would choose.  The format: a literal run is a
// byte 000LLLLL and the L+1 bytes; a match of 3 to 8 bytes is LLLDDDDD
// DDDDDDDD, L its length - 2, D its distance - 1; a longer one 111DDDDD,
// its length - 9 (level 1: one byte, 264 bytes at most; level 2: a byte
// 255 for every 255 more, then the rest), then DDDDDDDD.  The block's
// first byte (a literal run) carries the level: 0x20 set for level 2.
// Matches reach at most 8191 bytes back, so level 2's far form (a 16-bit
// distance after D = 8191) is never needed.
type fastlzEnc struct {
	table [1 << 13]int32 // by hash of 3 bytes: the last position + 1
	buf   []byte
}

// compress returns the FastLZ block of src (level 2 from 64 KiB, else 1),
// or nil when it would not be shorter than src.  The block is valid until
// the next call.
func (z *fastlzEnc) compress(src []byte) []byte {
	const maxDist = 8191
	n := len(src)
	level, maxLen := 1, 264
	if n >= 64<<10 {
		level, maxLen = 2, n
	}
	for i := range z.table {
		z.table[i] = 0
	}
	if cap(z.buf) < n+n/32+8 {
		z.buf = make([]byte, 0, n+n/32+8)
	}
	dst := z.buf[:0]
	lit := 0 // the first byte not yet in dst
	literals := func(end int) {
		for lit < end {
			k := end - lit
			if k > 32 {
				k = 32
			}
			dst = append(dst, byte(k-1))
			dst = append(dst, src[lit:lit+k]...)
			lit += k
		}
	}
	for i := 0; i+3 <= n && len(dst) < n; {
		h := (uint32(src[i]) | uint32(src[i+1])<<8 | uint32(src[i+2])<<16) * 2654435769 >> (32 - 13)
		ref := int(z.table[h]) - 1
		z.table[h] = int32(i + 1)
		if ref < 0 || i-ref > maxDist || src[ref] != src[i] || src[ref+1] != src[i+1] || src[ref+2] != src[i+2] {
			i++
			continue
		}
		l := 3
		for i+l < n && l < maxLen && src[ref+l] == src[i+l] {
			l++
		}
		literals(i)
		d := i - ref - 1
		switch {
		case l <= 8:
			dst = append(dst, byte((l-2)<<5|d>>8), byte(d))
		case level == 1:
			dst = append(dst, byte(7<<5|d>>8), byte(l-9), byte(d))
		default:
			dst = append(dst, byte(7<<5|d>>8))
			r := l - 9
			for ; r >= 255; r -= 255 {
				dst = append(dst, 255)
			}
			dst = append(dst, byte(r), byte(d))
		}
		i += l
		lit = i
	}
	if len(dst) < n {
		literals(n)
	}
	z.buf = dst
	if len(dst) >= n || n == 0 {
		return nil
	}
	if level == 2 {
		dst[0] |= 1 << 5
	}
	return dst
}

// writeFragment takes one fragment of an IO write: [0] handle, [8] u64
// direction 0 | compression << 32, [16] u64 offset of the whole write, [24]
// u32 its length, [28] u32 offset of the fragment, [32] u32 fragment
// length, [36] u32 wire length of the data that follows (0 none and 1
// zlib are taken; FastLZ/SkipZ refused).  After the last fragment: one
// 44-byte acknowledgement, [0] status 0, [8] 0, [24] length, [28] 0,
// [32] length (docs/nfc_write.md: "S: type=7 opId=14 size=44 total=66048
// dest=0 chunk=66048"); GUESS: [16] the offset, and [36] 0 as no data
// follows (not recorded; ack_len36=1 puts the length there too, as a host
// that echoes it would: a client must not wait for data after an ack).
//
// strict: what the fragment departs from the records ("": nothing); the
// whole write is then refused, one ERROR record for its opId, no ack.
func (c *nfcConn) writeFragment(m *aioMsg, strict string) {
	p := m.payload
	if len(p) < 44 {
		if strict != "" {
			c.errorRecord(m.op, nfcErrInvalid, "vmdkfs-lab strict: "+strict)
			return
		}
		c.errorRecord(m.op, nfcErrInvalid, "IO payload too short")
		return
	}
	comp := uint32(le64(p[8:]) >> 32)
	off, total, fo, fl := int64(le64(p[16:])), le32(p[24:]), le32(p[28:]), le32(p[32:])
	pw := c.writes[m.op]
	if pw == nil {
		maxIO := c.s.knob().MaxIO
		if total == 0 || int64(total) > maxIO {
			text := fmt.Sprintf("invalid IO length %d", total)
			if strict != "" {
				text = "vmdkfs-lab strict: " + strict
			}
			c.errorRecord(m.op, nfcErrInvalid, text)
			return
		}
		pw = &pendingWrite{off: off, total: total, buf: make([]byte, total)}
		c.writes[m.op] = pw
		h, code, text := c.checkIO(le64(p), off, int64(total), maxIO)
		pw.h, pw.errCode, pw.errText = h, code, text
		if h != nil && !h.RW {
			pw.errCode, pw.errText = nfcErrPermission, "The file is read-only"
		}
	}
	bad := func(code uint64, text string) {
		if pw.errCode == 0 {
			pw.errCode, pw.errText = code, text
		}
	}
	if strict != "" && !pw.strict {
		// SIMULATED: strict mode refuses the whole write.
		pw.errCode, pw.errText, pw.strict = nfcErrInvalid, "vmdkfs-lab strict: "+strict, true
	}
	data := m.extra
	switch {
	case off != pw.off || total != pw.total:
		bad(nfcErrInvalid, "write fragments disagree on the offset or length")
	case fl == 0 || int(fl) > c.bufSize || uint64(fo)+uint64(fl) > uint64(total):
		bad(nfcErrInvalid, fmt.Sprintf("write fragment at %d of %d bytes (buffer %d, write %d)", fo, fl, c.bufSize, total))
	case comp == 1:
		zr, err := zlib.NewReader(bytes.NewReader(data))
		if err == nil {
			data, err = io.ReadAll(io.LimitReader(zr, int64(fl)+1))
		}
		if err != nil || len(data) != int(fl) {
			bad(nfcErrInvalid, "bad zlib data in a write fragment")
		}
	case comp != 0:
		bad(nfcErrUnsupported, fmt.Sprintf("compression type %d is not supported by vmdkfs-lab", comp))
	case len(data) != int(fl):
		bad(nfcErrInvalid, "write fragment wire length differs from its length")
	}
	if pw.errCode == 0 {
		copy(pw.buf[fo:], data)
	}
	pw.got += fl
	if fl == 0 {
		pw.got = pw.total // give up on that write
	}
	if pw.got < pw.total {
		return
	}
	delete(c.writes, m.op)
	if pw.errCode != 0 {
		c.errorRecord(m.op, pw.errCode, pw.errText)
		return
	}
	if code, text, ok := c.s.takeIOFault(); ok {
		c.errorRecord(m.op, code, text)
		return
	}
	if err := c.s.applyWrite(pw.h, pw.off, pw.buf); err != nil {
		c.logf("write: %v", err)
		c.errorRecord(m.op, nfcErrNotFound, "write failed: "+err.Error())
		return
	}
	c.s.stat(func(st *nfcStats) { st.IOs++; st.Writes++; st.BytesWritten += int64(len(pw.buf)) })
	k := c.s.knob()
	c.delay(&k)
	a := make([]byte, 44)
	put64(a[16:], uint64(pw.off))
	put32(a[24:], pw.total)
	put32(a[32:], pw.total)
	if k.AckLen36 {
		put32(a[36:], pw.total)
	}
	_ = c.send(aioIO, m.op, a, nil)
}

// applyWrite writes into the link itself (qemu-io, so a sparse delta
// allocates grains as a host would) and into the handle's raw copy.
//
// SIMULATED: writes through NFC land in the disk file at once.
func (s *nfcServer) applyWrite(h *nfcHandle, off int64, data []byte) error {
	v := h.v
	v.mu.Lock()
	defer v.mu.Unlock()
	src, err := os.CreateTemp(s.tmpDir, "w*.bin")
	if err != nil {
		return err
	}
	defer os.Remove(src.Name())
	_, err = src.Write(data)
	if cerr := src.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// qemu-io parses its command line itself: name the data file relative
	// to its folder, so that no space in a path splits it.
	cmd := exec.Command("qemu-io", "-f", "vmdk", "-c",
		fmt.Sprintf("write -q -s %s %d %d", filepath.Base(src.Name()), off, len(data)), h.Local)
	cmd.Dir = s.tmpDir
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		if err == nil {
			err = errors.New(strings.TrimSpace(string(out)))
		}
		return fmt.Errorf("qemu-io write into %s: %v", h.Local, err)
	}
	if err = normalizeDescriptor(h.Local); err != nil {
		return err
	}
	if _, err = h.raw.WriteAt(data, off); err != nil {
		return err
	}
	h.Wrote = true
	s.lab.mu.Lock()
	s.lab.writes[h.Path] = append(s.lab.writes[h.Path], writeRec{Offset: off, Length: int64(len(data)), Pattern: "nfc"})
	s.lab.mu.Unlock()
	return nil
}

// ddbGet: [0] handle, [8] key length, [12] reserved; the key follows.
// Reply: 16 bytes, [12] value length, the value follows; a key not found
// is 16 zero bytes.  The key comes without "ddb." and the value is the
// descriptor's text (docs/nfc_open.md, newer version, "DDB_GET
// request/reply layout"): it is looked up as "ddb.KEY", then (GUESS) as
// "KEY".  nfc_records.json has no row for DDB_GET: strict mode refuses it.
func (c *nfcConn) ddbGet(m *aioMsg) {
	if len(m.payload) < 8 || c.handles[le64(m.payload)] == nil {
		c.refuse(m, 16, nfcErrInvalid, "invalid file handle")
		return
	}
	h := c.handles[le64(m.payload)]
	key := string(m.extra)
	val := ""
	if text, err := readDescriptor(h.Local); err == nil {
		if val = descValue(text, "ddb."+key); val == "" {
			val = descValue(text, key)
		}
	}
	p := make([]byte, 16)
	put32(p[12:], uint32(len(val)))
	_ = c.send(aioDDBGet, m.op, p, []byte(val))
}
