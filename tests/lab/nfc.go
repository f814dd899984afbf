package main

// SIMULATED: the NFC data path behind VDDK's nbd and nbdssl transports:
// tickets (nfc_soap.go), authd on its own loopback port with its own TLS
// certificate (this file), the NFC handshake and AIO session
// (nfc_session.go), and a check of every message a client sends against
// the records of VDDK talking to real hosts (nfc_conform.go,
// nfc_records.json).  VMware does not publish the protocol.  The lab's
// behaviour follows what cloudbase/OpenVixDiskLib recorded of VDDK 8.0.2
// and vCenter/ESXi 8.0.1 (its docs/nfc_auth.md, nfc_open.md, nfc_read.md,
// nfc_write.md, cited where used); ../shared/notes/nfc-protocol.md (that
// and vectura) fills the rest.  Where the records leave a choice the code
// says "GUESS:" with the alternatives, and README.md lists them.

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

const (
	nfcGreeting = "220 VMware Authentication Daemon Version 1.10: SSL Required, ServerDaemonProtocol:SOAP, " +
		"MKSDisplayProtocol:VNC , VMXARGS supported, NFCSSL supported/t, SHA256 supported\r\n"
	nfcDefaultBuf   = 64 << 10 // OPEN_SESSION buffer size 0 means 64 KiB
	nfcMaxBuf       = 2 << 20  // largest session buffer accepted: docs/nfc_open.md saw 2 MiB accepted, 16 MiB refused (GUESS: in between)
	nfcDefaultMaxIO = 8 << 20  // GUESS: largest IO request (sources: reads of 1 MiB; 2 MiB accepted, 16 MiB refused)
	nfcDefaultTTL   = 60 * time.Second
)

// Error codes of ERROR records.  11 is documented ("permission check
// failed", "file read only"; docs/nfc_auth.md records 0x0b for a
// read-write open on a read-only ticket); the others are GUESSes borrowed
// from the VIX error numbers (VIX_E_INVALID_ARG 3, VIX_E_FILE_NOT_FOUND 4,
// VIX_E_NOT_SUPPORTED 6, VIX_E_FILE_ALREADY_LOCKED 15).  Strict mode's
// refusals are 3.
const (
	nfcErrInvalid     = 3
	nfcErrNotFound    = 4
	nfcErrUnsupported = 6
	nfcErrPermission  = 11
	nfcErrLocked      = 15
)

// nfcTicket is a HostServiceTicket the lab gave out.
type nfcTicket struct {
	ID      string    `json:"-"`
	VM      string    `json:"vm"`
	DiskKey int32     `json:"disk_key"` // -1: every disk of the VM (NfcGetVmFiles)
	RW      bool      `json:"rw"`
	Method  string    `json:"method"`
	Service string    `json:"service"`
	Issued  time.Time `json:"issued"`
	Used    bool      `json:"used"`
	v       *labVM
}

// nfcKnobs: fault injection on the NFC path (/lab/nfc).
type nfcKnobs struct {
	Cut             int64  `json:"cut"` // -1: off; else close after that many more bytes of read reply data
	ErrCode         uint64 `json:"error_code"`
	ErrText         string `json:"error_text"`
	ErrCount        int    `json:"error_count"` // IO requests left to refuse; -1: until cleared
	DelayMs         int64  `json:"delay_ms"`
	ProxyReply      string `json:"proxy_reply"`
	WrongThumbprint bool   `json:"wrong_thumbprint"`
	StallBanner     bool   `json:"stall_banner"` // never answer BANNER (a request timeout)
	StallWrites     int    `json:"stall_writes"` // IO writes left at which to stop reading (a write timeout); -1: until cleared
	StallMs         int64  `json:"stall_ms"`     // how long a stalled link stays open before it is dropped
	StallClose      bool   `json:"stall_close"`  // never answer CLOSE_FILE (the link is dropped after stall_ms)
	Shuffle         bool   `json:"shuffle"`
	ParamsReply     string `json:"params_reply"` // "early" (default: as recorded) or "after_version"
	MaxIO           int64  `json:"max_io"`
	TicketTTLms     int64  `json:"ticket_ttl_ms"`
	Strict          bool   `json:"strict"`    // refuse what departs from nfc_records.json (default on)
	AckLen36        bool   `json:"ack_len36"` // write acknowledgements carry the length at [36] too
}

func defaultNFCKnobs() nfcKnobs {
	return nfcKnobs{Cut: -1, StallMs: 20000, ParamsReply: "early", MaxIO: nfcDefaultMaxIO, TicketTTLms: nfcDefaultTTL.Milliseconds(),
		Strict: true}
}

type nfcStats struct {
	Tickets      int   `json:"tickets"`
	Connections  int   `json:"connections"`
	AuthdOK      int   `json:"authd_ok"`
	AuthdRefused int   `json:"authd_refused"`
	NBD          int   `json:"nbd"`
	NBDSSL       int   `json:"nbdssl"`
	Sessions     int   `json:"sessions"`
	Opens        int   `json:"opens"`
	OpenErrors   int   `json:"open_errors"`
	IOs          int   `json:"ios"`
	Reads        int   `json:"reads"`
	Writes       int   `json:"writes"`
	BytesRead    int64 `json:"bytes_read"`
	BytesWritten int64 `json:"bytes_written"`
	ErrorRecords int   `json:"error_records"`
	Cuts         int   `json:"cuts"`
	Stalls       int   `json:"stalls"`
	// Payload sizes of the last CLOSE_FILE and CLOSE_SESSION (8 or 16,
	// 4 or 16: the public sources differ).
	CloseFileSize    int `json:"close_file_size"`
	CloseSessionSize int `json:"close_session_size"`
	Live             int `json:"live"`    // connections open now
	Refused          int `json:"refused"` // closed at accept (refuse=N)
}

// nfcHandle is a disk link opened by OPEN_FILE.  Its data is materialised
// at open time (qemu-img convert of the link's chain to a raw file); a
// read-write handle also writes every IO into the link itself (qemu-io).
type nfcHandle struct {
	ID        uint64    `json:"handle"`
	Path      string    `json:"path"`
	Local     string    `json:"local"`
	VMName    string    `json:"vm"`
	DiskKey   int32     `json:"disk_key"`
	RW        bool      `json:"rw"`
	Transport string    `json:"transport"`
	Capacity  int64     `json:"capacity_bytes"`
	Opened    time.Time `json:"opened"`
	Wrote     bool      `json:"wrote"`
	v         *labVM
	raw       *os.File
	rawPath   string
	geometry  [3]uint32
}

type nfcServer struct {
	lab         *Lab
	ln          net.Listener
	host        string
	port        int
	conf        *tls.Config
	certFile    string
	sha1        string
	sha256      string
	wrongSHA256 string // THUMBPRINT_SHA2 answer with wrong_thumbprint=1
	tmpDir      string

	mu      sync.Mutex
	tickets map[string]*nfcTicket
	knobs   nfcKnobs
	stats   nfcStats
	handles map[uint64]*nfcHandle
	log     nfcLog // what clients sent (/lab/nfc/log)
	fault   nfcFault // faults.go
	refuse  int      // connections left to refuse at accept
}

// startNFC starts authd + NFC on addr with the certificate DIR/nfc-*.pem
// (made on first start).  otherSHA256 is another certificate's thumbprint
// (the SOAP one), sent by THUMBPRINT_SHA2 when wrong_thumbprint is on.
func (l *Lab) startNFC(dir, addr, otherSHA256 string) (*nfcServer, error) {
	cert, certFile, err := loadOrCreateCertNamed(dir, "nfc", "vmdkfs-lab simulated ESXi authd/NFC")
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, "nfc-tmp")
	_ = os.RemoveAll(tmp)
	if err = os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &nfcServer{
		lab:         l,
		ln:          ln,
		conf:        &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		certFile:    certFile,
		wrongSHA256: otherSHA256,
		tmpDir:      tmp,
		tickets:     map[string]*nfcTicket{},
		knobs:       defaultNFCKnobs(),
		handles:     map[uint64]*nfcHandle{},
	}
	s.sha1, s.sha256 = thumbprints(cert.Certificate[0])
	ta := ln.Addr().(*net.TCPAddr)
	s.host, s.port = ta.IP.String(), ta.Port
	go s.serve()
	return s, nil
}

func (s *nfcServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			log.Printf("nfc: accept: %v", err)
			return
		}
		go s.handle(c)
	}
}

func (s *nfcServer) knob() nfcKnobs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.knobs
}

func (s *nfcServer) stat(f func(st *nfcStats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// ---- tickets ----

// newSessionID makes a ticket id in vSphere's style (52xxxxxx-xxxx-...).
func newSessionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] = 0x52
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (s *nfcServer) issue(t *nfcTicket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked()
	t.ID = newSessionID()
	t.Issued = time.Now()
	s.tickets[t.ID] = t
	s.stats.Tickets++
}

// purgeLocked forgets tickets that expired or were used more than a
// minute ago (used ones are kept a while for /lab/state).
func (s *nfcServer) purgeLocked() {
	ttl := time.Duration(s.knobs.TicketTTLms) * time.Millisecond
	for id, t := range s.tickets {
		if age := time.Since(t.Issued); age > ttl+time.Minute || (!t.Used && age > ttl+5*time.Second) {
			delete(s.tickets, id)
		}
	}
}

// take consumes ticket id: it must exist, be unused and not expired.
func (s *nfcServer) take(id string) (*nfcTicket, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tickets[id]
	switch {
	case t == nil:
		return nil, "unknown"
	case t.Used:
		return nil, "already used"
	case time.Since(t.Issued) > time.Duration(s.knobs.TicketTTLms)*time.Millisecond:
		return nil, "expired"
	}
	t.Used = true
	return t, ""
}

// ---- authd ----

// noCloseConn lets a tls.Conn be dropped without its Close ever reaching
// the socket (no close_notify, no close): after PROXY the first TLS
// session is abandoned and the same TCP connection goes on.
type noCloseConn struct{ net.Conn }

func (noCloseConn) Close() error { return nil }

// batchConn sits under the nbdssl TLS session: once batching is on (after
// the handshake), the records of one tls.Conn.Write are gathered and go to
// the socket in one write at flush, not one system call per 16 KiB record.
// The bytes on the wire, records and their sizes are the same; only the
// lab's CPU cost per byte drops (it shares this machine's cores with
// vmdkfs, where a real host would not).  make bench's plain TLS stream
// (stream.go) is sent the same way.
type batchConn struct {
	net.Conn
	batch bool
	buf   []byte
}

func (b *batchConn) Write(p []byte) (int, error) {
	if !b.batch {
		return b.Conn.Write(p)
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *batchConn) flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	if cap(b.buf) > 4<<20 {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
	return err
}

// readLine reads one line ending in LF, a byte at a time so that nothing
// after it is consumed; CR LF and LF are accepted, the end is stripped.
func readLine(r io.Reader, max int) (string, error) {
	var b []byte
	var c [1]byte
	for {
		if _, err := io.ReadFull(r, c[:]); err != nil {
			return string(b), err
		}
		if c[0] == '\n' {
			return strings.TrimSuffix(string(b), "\r"), nil
		}
		if len(b) >= max {
			return string(b), fmt.Errorf("line longer than %d bytes", max)
		}
		b = append(b, c[0])
	}
}

// handle serves one connection: the greeting in clear, TLS, the authd
// commands, then NFC in clear (nbd) or in a second TLS session (nbdssl).
//
// SIMULATED: ESXi's authd (TCP 902) as OpenVixDiskLib's docs/nfc_auth.md
// recorded it ("Stage 3: authd handshake").
func (s *nfcServer) handle(tcp net.Conn) {
	defer tcp.Close()
	if tc, ok := tcp.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	fc, take := s.accepted(tcp)
	if !take {
		log.Printf("nfc %s: connection refused (refuse knob)", fc.peer)
		return
	}
	s.stat(func(st *nfcStats) { st.Connections++; st.Live++ })
	defer s.stat(func(st *nfcStats) { st.Live-- })
	var raw net.Conn = fc
	peer := raw.RemoteAddr().String()
	_ = raw.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(raw, nfcGreeting); err != nil {
		return
	}
	// Anything but a TLS ClientHello now fails the handshake: the link closes.
	first := tls.Server(noCloseConn{raw}, s.conf)
	if err := first.Handshake(); err != nil {
		log.Printf("nfc %s: TLS handshake: %v", peer, err)
		return
	}
	say := func(line string) bool {
		_, err := io.WriteString(first, line+"\r\n")
		return err == nil
	}
	k := s.newConform(peer)
	k.fc = fc
	refuse := func(line, why string) {
		s.stat(func(st *nfcStats) { st.AuthdRefused++ })
		log.Printf("nfc %s: authd: %s", peer, why)
		say(line)
	}
	session := ""
	var ticket *nfcTicket
	ssl := false
	for ticket == nil {
		line, err := readLine(first, 1024)
		if err != nil {
			if err != io.EOF {
				log.Printf("nfc %s: authd: %v", peer, err)
			}
			return
		}
		if dep := k.authd(line); dep != "" && k.strict() {
			// SIMULATED: strict mode answers a line that departs from
			// the records loudly, then closes the link.
			refuse("501 vmdkfs-lab strict: "+dep, "strict: "+dep)
			return
		}
		cmd, arg := line, ""
		if i := strings.IndexByte(line, ' '); i >= 0 {
			cmd, arg = line[:i], line[i+1:]
		}
		switch strings.ToUpper(cmd) {
		case "SESSION":
			// No reply (docs/nfc_auth.md: "SESSION does not get a reply
			// of its own"; a client waiting for one hangs).  GUESS: the
			// ticket is checked at PROXY, not here (alternative: at
			// SESSION, the refusal answering the next command).
			session = strings.TrimSpace(arg)
		case "BANNER":
			if s.knob().StallBanner {
				// SIMULATED fault: authd hangs; the client's request
				// timeout must fire.
				time.Sleep(20 * time.Second)
				return
			}
			if !say(strings.TrimSuffix(nfcGreeting, "\r\n")) {
				return
			}
		case "THUMBPRINT_SHA2":
			// VDDK sends a plain tag ("PlainText").  A colon-separated
			// thumbprint gets "501 Invalid arguments" (docs/nfc_auth.md,
			// "Notes"); GUESS: so does an empty tag or one with a space.
			tag := strings.TrimSpace(arg)
			if tag == "" || strings.ContainsAny(tag, ": ") {
				if !say("501 Invalid arguments") {
					return
				}
				continue
			}
			tp := s.sha256
			if s.knob().WrongThumbprint {
				tp = s.wrongSHA256
			}
			if !say("200 " + tp) {
				return
			}
		case "PROXY":
			if k := s.knob(); k.ProxyReply != "" {
				// SIMULATED fault: the line asked for, then the link closes.
				refuse(k.ProxyReply, "injected PROXY reply "+k.ProxyReply)
				return
			}
			svc := strings.TrimSpace(arg)
			if session == "" {
				refuse("530 Please login with USER and PASS", "PROXY without SESSION")
				return
			}
			t, why := s.take(session)
			if t == nil {
				// GUESS: the text (the brief of the lab: a 500 line, then close).
				refuse("500 Invalid session ticket", "session ticket "+why)
				return
			}
			switch svc {
			case t.Service:
			case t.Service + "ssl":
				ssl = true
			default:
				// GUESS: a service the ticket is not for.
				refuse("500 Unknown service "+svc, fmt.Sprintf("PROXY %s with a ticket for %s", svc, t.Service))
				return
			}
			reply := "200 Connect ha-nfc"
			if ssl {
				reply = "200 Connect ha-nfcssl"
			}
			if !say(reply) {
				return
			}
			ticket = t
			k.setMode(map[bool]string{true: "nbdssl", false: "nbd"}[ssl])
		case "QUIT":
			say("221 Goodbye")
			return
		case "USER", "PASS", "XPAS":
			say("530 Login incorrect") // docs/nfc_auth.md, with a vCenter ticket
		default:
			// docs/nfc_auth.md: SESSIONID and CONNECT_VPXA are answered
			// so; GUESS: every other unknown command too.
			say("530 Please login with USER and PASS")
		}
	}
	// The first TLS session is abandoned here: "first" is dropped, never
	// closed, so no close_notify goes out.
	first = nil
	var rw io.ReadWriter = raw
	flush := func() error { return nil }
	mode := "nbd"
	if ssl {
		mode = "nbdssl"
		bc := &batchConn{Conn: noCloseConn{raw}}
		second := tls.Server(bc, s.conf)
		if err := second.Handshake(); err != nil {
			log.Printf("nfc %s: second TLS handshake (nbdssl): %v", peer, err)
			return
		}
		bc.batch = true
		rw = second
		flush = bc.flush
	}
	s.stat(func(st *nfcStats) {
		st.AuthdOK++
		if ssl {
			st.NBDSSL++
		} else {
			st.NBD++
		}
	})
	_ = raw.SetDeadline(time.Time{}) // an open NFC disk may stay idle for long
	c := &nfcConn{s: s, raw: raw, rw: rw, flush: flush, ticket: ticket, mode: mode, peer: peer, k: k,
		bufSize: nfcDefaultBuf, handles: map[uint64]*nfcHandle{}, writes: map[uint32]*pendingWrite{}}
	c.run()
}

// ---- state ----

func (s *nfcServer) state() map[string]interface{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked()
	tickets := []*nfcTicket{}
	for _, t := range s.tickets {
		tickets = append(tickets, t)
	}
	sort.Slice(tickets, func(i, j int) bool { return tickets[i].Issued.Before(tickets[j].Issued) })
	handles := []*nfcHandle{}
	for _, h := range s.handles {
		handles = append(handles, h)
	}
	sort.Slice(handles, func(i, j int) bool { return handles[i].Opened.Before(handles[j].Opened) })
	return map[string]interface{}{
		"host":              s.host,
		"port":              s.port,
		"cert":              s.certFile,
		"thumbprint_sha1":   s.sha1,
		"thumbprint_sha256": s.sha256,
		"knobs":             s.knobs,
		"fault":             s.fault,
		"refuse":            s.refuse,
		"stats":             s.stats,
		"tickets":           tickets,
		"handles":           handles,
		"service":           map[bool]string{true: "nfc", false: "vpxa-nfc"}[s.lab.esx],
		"nfc_service_moref": s.lab.nfcServiceRef().Value,
	}
}

// rwBusy returns a datastore path of VM v open read-write through NFC, or "".
func (s *nfcServer) rwBusy(v *labVM) string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.handles {
		if h.v == v && h.RW {
			return h.Path
		}
	}
	return ""
}

func le32(b []byte) uint32     { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64     { return binary.LittleEndian.Uint64(b) }
func put32(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }
func put64(b []byte, v uint64) { binary.LittleEndian.PutUint64(b, v) }
