package main

// SIMULATED: a conformance check of what an NFC client sends against the
// table of what VDDK was recorded sending to real vCenter/ESXi hosts
// (nfc_records.json, every row citing its file in cloudbase/OpenVixDiskLib,
// an independent implementation written from intercepts of VDDK 8.0.2).
// Each connection has its own checker, fed by authd (every line after
// TLS), the classic handshake (every 264-byte message, the trailer after
// 54), and the AIO session (every message); the SOAP ticket calls are
// checked too.  In strict mode (the default) a message that departs is
// answered with an error and not processed; every message and its
// departures are recorded for /lab/nfc/log.

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

//go:embed nfc_records.json
var nfcRecordsJSON []byte

// nfcRec is the table, loaded when the lab starts (a table that does not
// parse stops the lab: it is part of the build).
var nfcRec = mustLoadRecords(nfcRecordsJSON)

// Field value kinds (the table's "about"): a number, one of a list, "*",
// "$NAME", "@handle", "@extra".
const (
	specNum = iota
	specList
	specAny
	specBind
	specHandle
	specExtra
	specBytes
)

type recField struct {
	at, width int
	kind      int
	num       uint64
	list      []uint64
	name      string // specBind: the name; also the table's spelling
	bytes     []byte // specBytes
}

type recRow struct {
	id, source string
	line       *regexp.Regexp // authd
	typ        uint32         // msg, aio
	size       int            // aio: the payload size
	dir        int64          // aio type 7: the low 32 bits of [8]; -1: none
	fields     []recField
	mask       []bool // the bytes the fields name
	trailer    []byte // msg: the bytes after the message; nil: none
	hasTrailer bool
	extra      string // aio: what follows the payload ("" none)
	method, ns string // soap
	args       []string
}

type nfcRecords struct {
	sources   map[string]string
	authd     []*recRow
	msg       map[uint32]*recRow
	aio       []*recRow
	soap      map[string]*recRow
	connect   []string
	close     []string
	seqSource string
	opSource  string
}

type rawRecRow struct {
	ID      string                       `json:"id"`
	Source  string                       `json:"source"`
	Line    string                       `json:"line"`
	Type    *uint32                      `json:"type"`
	Size    *int                         `json:"size"`
	Dir     *uint32                      `json:"dir"`
	Fields  []map[string]json.RawMessage `json:"fields"`
	Trailer *string                      `json:"trailer"`
	Extra   string                       `json:"extra"`
	Method  string                       `json:"method"`
	NS      string                       `json:"ns"`
	Args    []string                     `json:"args"`
}

type rawRecords struct {
	Sources   map[string]string `json:"sources"`
	SOAP      []rawRecRow       `json:"soap"`
	Authd     []rawRecRow       `json:"authd"`
	Msg       []rawRecRow       `json:"msg"`
	AIO       []rawRecRow       `json:"aio"`
	Sequences struct {
		Connect []string `json:"connect"`
		Close   []string `json:"close"`
		Source  string   `json:"source"`
	} `json:"sequences"`
	Opids struct {
		Rule   string `json:"rule"`
		Source string `json:"source"`
	} `json:"opids"`
}

func mustLoadRecords(b []byte) *nfcRecords {
	r, err := loadRecords(b)
	if err != nil {
		log.Fatalf("nfc_records.json: %v", err)
	}
	return r
}

func parseSpec(raw json.RawMessage, f *recField) error {
	var n uint64
	if err := json.Unmarshal(raw, &n); err == nil {
		f.kind, f.num = specNum, n
		return nil
	}
	var l []uint64
	if err := json.Unmarshal(raw, &l); err == nil {
		f.kind, f.list = specList, l
		return nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("value %s: a number, a list of numbers or a string", raw)
	}
	switch {
	case s == "*":
		f.kind = specAny
	case s == "@handle":
		f.kind = specHandle
	case s == "@extra":
		f.kind = specExtra
	case len(s) > 1 && s[0] == '$':
		f.kind, f.name = specBind, s
	default:
		return fmt.Errorf("value %q", s)
	}
	return nil
}

func (r *recRow) compile(raw *rawRecRow) error {
	r.id, r.source, r.size, r.dir, r.extra = raw.ID, raw.Source, -1, -1, raw.Extra
	if raw.Size != nil {
		r.size = *raw.Size
	}
	if raw.Dir != nil {
		r.dir = int64(*raw.Dir)
	}
	if raw.Type != nil {
		r.typ = *raw.Type
	}
	if raw.Trailer != nil {
		r.trailer, r.hasTrailer = []byte(*raw.Trailer), true
	}
	end := 0
	for _, m := range raw.Fields {
		var f recField
		at, ok := m["at"]
		if !ok || json.Unmarshal(at, &f.at) != nil || f.at < 0 || f.at > 4096 {
			return fmt.Errorf("%s: a field without a good \"at\"", r.id)
		}
		switch {
		case m["u32"] != nil:
			f.width = 4
			if err := parseSpec(m["u32"], &f); err != nil {
				return fmt.Errorf("%s [%d]: %v", r.id, f.at, err)
			}
		case m["u64"] != nil:
			f.width = 8
			if err := parseSpec(m["u64"], &f); err != nil {
				return fmt.Errorf("%s [%d]: %v", r.id, f.at, err)
			}
		case m["bytes"] != nil:
			var s string
			if err := json.Unmarshal(m["bytes"], &s); err != nil || s == "" {
				return fmt.Errorf("%s [%d]: bytes must be a string", r.id, f.at)
			}
			f.kind, f.bytes, f.width = specBytes, []byte(s), len(s)
		default:
			return fmt.Errorf("%s [%d]: a field of no known width (u32, u64, bytes)", r.id, f.at)
		}
		if f.at+f.width > end {
			end = f.at + f.width
		}
		r.fields = append(r.fields, f)
	}
	r.mask = make([]bool, end)
	for _, f := range r.fields {
		for i := f.at; i < f.at+f.width; i++ {
			r.mask[i] = true
		}
	}
	return nil
}

func loadRecords(b []byte) (*nfcRecords, error) {
	var raw rawRecords
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	t := &nfcRecords{sources: raw.Sources, msg: map[uint32]*recRow{}, soap: map[string]*recRow{},
		connect: raw.Sequences.Connect, close: raw.Sequences.Close,
		seqSource: raw.Sequences.Source, opSource: raw.Opids.Source}
	ids := map[string]bool{}
	add := func(kind string, rows []rawRecRow, f func(r *recRow, raw *rawRecRow) error) error {
		for i := range rows {
			r := &recRow{}
			if err := r.compile(&rows[i]); err != nil {
				return err
			}
			if r.id == "" || ids[r.id] {
				return fmt.Errorf("%s row %d: no id, or one used twice (%q)", kind, i, r.id)
			}
			ids[r.id] = true
			if err := f(r, &rows[i]); err != nil {
				return fmt.Errorf("%s: %v", r.id, err)
			}
		}
		return nil
	}
	err := add("authd", raw.Authd, func(r *recRow, raw *rawRecRow) error {
		re, err := regexp.Compile(raw.Line)
		if err != nil || raw.Line == "" {
			return fmt.Errorf("line %q: %v", raw.Line, err)
		}
		r.line = re
		t.authd = append(t.authd, r)
		return nil
	})
	if err == nil {
		err = add("msg", raw.Msg, func(r *recRow, raw *rawRecRow) error {
			if raw.Type == nil || t.msg[r.typ] != nil {
				return fmt.Errorf("no type, or a type of another row")
			}
			for _, f := range r.fields {
				if f.at < 4 || f.at+f.width > nfcMsgLen {
					return fmt.Errorf("field [%d] outside the message after its type", f.at)
				}
			}
			t.msg[r.typ] = r
			return nil
		})
	}
	if err == nil {
		err = add("aio", raw.AIO, func(r *recRow, raw *rawRecRow) error {
			if raw.Type == nil || raw.Size == nil {
				return fmt.Errorf("no type or no size")
			}
			for _, f := range r.fields {
				if f.at+f.width > r.size {
					return fmt.Errorf("field [%d] beyond the payload of %d bytes", f.at, r.size)
				}
			}
			t.aio = append(t.aio, r)
			return nil
		})
	}
	if err == nil {
		err = add("soap", raw.SOAP, func(r *recRow, raw *rawRecRow) error {
			if raw.Method == "" || raw.NS == "" {
				return fmt.Errorf("no method or no ns")
			}
			r.method, r.ns, r.args = raw.Method, raw.NS, raw.Args
			t.soap[r.method] = r
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	for _, seq := range [][]string{t.connect, t.close} {
		if len(seq) == 0 {
			return nil, fmt.Errorf("sequences: connect and close are needed")
		}
		for _, id := range seq {
			if !ids[id] {
				return nil, fmt.Errorf("sequences: no row %q", id)
			}
		}
	}
	return t, nil
}

// aioRow finds the row of an AIO message: by type, and for rows with a
// direction by the low 32 bits of the u64 at [8].
func (t *nfcRecords) aioRow(typ uint32, payload []byte) *recRow {
	for _, r := range t.aio {
		if r.typ != typ {
			continue
		}
		if r.dir >= 0 && (len(payload) < 12 || int64(le32(payload[8:])) != r.dir) {
			continue
		}
		return r
	}
	return nil
}

// specText spells a field's expected value as the table does.
func (f *recField) specText() string {
	switch f.kind {
	case specNum:
		return strconv.FormatUint(f.num, 10)
	case specList:
		s := make([]string, len(f.list))
		for i, n := range f.list {
			s[i] = strconv.FormatUint(n, 10)
		}
		return "one of " + strings.Join(s, ", ")
	case specAny:
		return "*"
	case specHandle:
		return "@handle"
	case specExtra:
		return "@extra"
	case specBytes:
		return strconv.Quote(string(f.bytes))
	}
	return f.name
}

// fields checks b against the row's fields and that every other byte is
// zero; skip: leading bytes that are not checked (a message's type).
// handles: the handles this connection's OPEN_FILE replies gave; extra:
// the number of bytes after the payload.
func (r *recRow) checkFields(b []byte, skip int, handles []uint64, extra int, deps []string) []string {
	dep := func(format string, a ...interface{}) {
		deps = append(deps, fmt.Sprintf(format, a...)+" (records: "+r.source+")")
	}
	type bind struct {
		name string
		v    uint64
		at   int
	}
	var bindBuf [4]bind
	binds := bindBuf[:0]
	for i := range r.fields {
		f := &r.fields[i]
		if f.at+f.width > len(b) {
			dep("%d bytes have no [%d]", len(b), f.at)
			continue
		}
		if f.kind == specBytes {
			if got := b[f.at : f.at+f.width]; !bytes.Equal(got, f.bytes) {
				dep("[%d] is %q, the records show %q", f.at, got, f.bytes)
			}
			continue
		}
		var v uint64
		if f.width == 4 {
			v = uint64(le32(b[f.at:]))
		} else {
			v = le64(b[f.at:])
		}
		switch f.kind {
		case specNum:
			if v != f.num {
				dep("[%d] is %d, the records show %d", f.at, v, f.num)
			}
		case specList:
			found := false
			for _, n := range f.list {
				found = found || v == n
			}
			if !found {
				dep("[%d] is %d, the records show %s", f.at, v, f.specText())
			}
		case specBind:
			var first *bind
			for j := range binds {
				if binds[j].name == f.name {
					first = &binds[j]
				}
			}
			if first == nil {
				binds = append(binds, bind{name: f.name, v: v, at: f.at})
			} else if first.v != v {
				dep("[%d] is %d, the records show %s, which is %d at [%d]", f.at, v, f.name, first.v, first.at)
			}
		case specHandle:
			found := false
			for _, h := range handles {
				found = found || h == v
			}
			if !found {
				given := "no OPEN_FILE reply gave a handle on this connection"
				if len(handles) > 0 {
					given = "the handle OPEN_FILE gave is " + hexHandles(handles)
				}
				dep("[%d] is %#x, the records show @handle (%s)", f.at, v, given)
			}
		case specExtra:
			if v != uint64(extra) {
				dep("[%d] is %d, the records show @extra, the %d bytes that follow the payload", f.at, v, extra)
			}
		}
	}
	for i := skip; i < len(b); i++ {
		if b[i] != 0 && (i >= len(r.mask) || !r.mask[i]) {
			dep("byte [%d] is %#x where the records show 0", i, b[i])
			break
		}
	}
	return deps
}

func hexHandles(h []uint64) string {
	s := make([]string, len(h))
	for i, v := range h {
		s[i] = fmt.Sprintf("%#x", v)
	}
	return strings.Join(s, ", ")
}

// ---- the record of what was received (/lab/nfc/log) ----

const (
	nfcLogMaxConns = 200
	nfcLogMaxMsgs  = 100000
	nfcLogMaxSOAP  = 1000
)

const (
	logAuthd = iota
	logMsg
	logAIO
)

// nfcLogMsg is one received message.  Its bytes are kept as received
// (the AIO reader allocates each payload afresh; handshake messages are
// copied), and hex-encoded only when the log is read, so that recording a
// read request is an append.
type nfcLogMsg struct {
	kind     int
	line     string
	typ, op  uint32
	size     uint32
	data     []byte // msg: the 264 bytes; aio: the payload
	trailer  []byte
	extraLen int
	extra    []byte // aio: extras of at most 4 KiB that are not IO data
	row      string
	departs  []string
}

type nfcConnLog struct {
	id       int
	peer     string
	mode     string
	handles  []string
	msgs     []nfcLogMsg
	dropped  int
	detached bool // cleared or dropped: no longer in the log
}

type nfcSOAPRec struct {
	Method        string   `json:"method"`
	NS            string   `json:"ns"`
	Args          []string `json:"args"`
	HostForAccess string   `json:"host_for_access"`
	VMHost        string   `json:"vm_host"`
	Row           string   `json:"row"`
	Departures    []string `json:"departures"`
}

type nfcLog struct {
	mu     sync.Mutex
	conns  []*nfcConnLog
	total  int
	nextID int
	soap   []*nfcSOAPRec
}

func (lg *nfcLog) newConn(peer string) *nfcConnLog {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	lg.nextID++
	c := &nfcConnLog{id: lg.nextID, peer: peer}
	lg.conns = append(lg.conns, c)
	if len(lg.conns) > nfcLogMaxConns {
		old := lg.conns[0]
		old.detached = true
		lg.total -= len(old.msgs)
		lg.conns = append([]*nfcConnLog(nil), lg.conns[1:]...)
	}
	return c
}

func (lg *nfcLog) add(c *nfcConnLog, m nfcLogMsg) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if c.detached {
		return
	}
	c.msgs = append(c.msgs, m)
	lg.total++
	if lg.total <= nfcLogMaxMsgs {
		return
	}
	// Drop the oldest tenth at once, so that the copies stay rare.
	drop := lg.total - nfcLogMaxMsgs + nfcLogMaxMsgs/10
	for _, o := range lg.conns {
		if drop == 0 {
			break
		}
		n := len(o.msgs)
		if n > drop {
			n = drop
		}
		if n == 0 {
			continue
		}
		o.msgs = o.msgs[n:] // the array goes when append moves it
		o.dropped += n
		lg.total -= n
		drop -= n
	}
}

func (lg *nfcLog) setMode(c *nfcConnLog, mode string) {
	lg.mu.Lock()
	c.mode = mode
	lg.mu.Unlock()
}

func (lg *nfcLog) addHandle(c *nfcConnLog, h uint64) {
	lg.mu.Lock()
	c.handles = append(c.handles, fmt.Sprintf("%#x", h))
	lg.mu.Unlock()
}

func (lg *nfcLog) addSOAP(r *nfcSOAPRec) {
	lg.mu.Lock()
	lg.soap = append(lg.soap, r)
	if len(lg.soap) > nfcLogMaxSOAP {
		lg.soap = append([]*nfcSOAPRec(nil), lg.soap[len(lg.soap)-nfcLogMaxSOAP:]...)
	}
	lg.mu.Unlock()
}

func (lg *nfcLog) clear() {
	lg.mu.Lock()
	for _, c := range lg.conns {
		c.detached = true
	}
	lg.conns, lg.total, lg.soap = nil, 0, nil
	lg.mu.Unlock()
}

// The JSON shapes of /lab/nfc/log.
type jsonNFCLog struct {
	Connections []jsonNFCConn `json:"connections"`
	SOAP        []*nfcSOAPRec `json:"soap"`
}

type jsonNFCConn struct {
	ID       int           `json:"id"`
	Peer     string        `json:"peer"`
	Mode     string        `json:"mode"`
	Handles  []string      `json:"handles"`
	Dropped  int           `json:"dropped"`
	Messages []interface{} `json:"messages"`
}

type jsonAuthdMsg struct {
	Kind       string   `json:"kind"`
	Line       string   `json:"line"`
	Row        string   `json:"row"`
	Departures []string `json:"departures"`
}

type jsonClassicMsg struct {
	Kind       string   `json:"kind"`
	Type       uint32   `json:"type"`
	Hex        string   `json:"hex"`
	Trailer    string   `json:"trailer"`
	Row        string   `json:"row"`
	Departures []string `json:"departures"`
}

type jsonAIOMsg struct {
	Kind       string   `json:"kind"`
	Type       uint32   `json:"type"`
	Op         uint32   `json:"op"`
	Size       uint32   `json:"size"`
	Payload    string   `json:"payload"`
	ExtraLen   int      `json:"extra_len"`
	Extra      *string  `json:"extra,omitempty"`
	Row        string   `json:"row"`
	Departures []string `json:"departures"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (m *nfcLogMsg) jsonValue() interface{} {
	switch m.kind {
	case logAuthd:
		return jsonAuthdMsg{Kind: "authd", Line: m.line, Row: m.row, Departures: nonNil(m.departs)}
	case logMsg:
		return jsonClassicMsg{Kind: "msg", Type: m.typ, Hex: hex.EncodeToString(m.data), Trailer: string(m.trailer),
			Row: m.row, Departures: nonNil(m.departs)}
	}
	j := jsonAIOMsg{Kind: "aio", Type: m.typ, Op: m.op, Size: m.size, Payload: hex.EncodeToString(m.data),
		ExtraLen: m.extraLen, Row: m.row, Departures: nonNil(m.departs)}
	if m.extra != nil {
		x := hex.EncodeToString(m.extra)
		j.Extra = &x
	}
	return j
}

// snapshot copies the log's structure under the lock (the messages'
// bytes are never changed once recorded) and encodes it outside.
func (lg *nfcLog) snapshot() jsonNFCLog {
	type connCopy struct {
		c       nfcConnLog
		handles []string
	}
	lg.mu.Lock()
	conns := make([]connCopy, len(lg.conns))
	for i, c := range lg.conns {
		conns[i] = connCopy{c: *c, handles: append([]string{}, c.handles...)}
	}
	soap := append([]*nfcSOAPRec{}, lg.soap...)
	lg.mu.Unlock()
	out := jsonNFCLog{Connections: []jsonNFCConn{}, SOAP: soap}
	for _, cc := range conns {
		j := jsonNFCConn{ID: cc.c.id, Peer: cc.c.peer, Mode: cc.c.mode, Handles: cc.handles, Dropped: cc.c.dropped,
			Messages: make([]interface{}, len(cc.c.msgs))}
		for i := range cc.c.msgs {
			j.Messages[i] = cc.c.msgs[i].jsonValue()
		}
		out.Connections = append(out.Connections, j)
	}
	return out
}

// handleNFCLog is /lab/nfc/log[?clear=1].
func (l *Lab) handleNFCLog(w http.ResponseWriter, r *http.Request) {
	if r.FormValue("clear") != "" {
		l.nfc.log.clear()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "SESSION <ticket>" as it is
	enc.SetIndent("", "  ")
	_ = enc.Encode(l.nfc.log.snapshot())
}

// ---- the per-connection checker ----

const (
	phaseConnect = iota // the "connect" sequence, in order
	phaseData           // reads and writes, then the "close" sequence
	phaseClose          // in the "close" sequence
	phaseDone           // after its last message
)

type nfcConform struct {
	s       *nfcServer
	rec     *nfcConnLog
	peer    string
	phase   int
	seq     int    // next index in the connect or close sequence
	last    string // the row of the last message in order
	op      uint32 // the next opId
	handles []uint64
	// The write whose fragments are coming: its opId, the bytes still due.
	inWrite   bool
	writeOp   uint32
	writeLeft int64
	fc        *faultConn // the connection's socket (faults.go)
}

func (s *nfcServer) newConform(peer string) *nfcConform {
	return &nfcConform{s: s, rec: s.log.newConn(peer), peer: peer}
}

func (k *nfcConform) setMode(mode string) { k.s.log.setMode(k.rec, mode) }

func (k *nfcConform) addHandle(h uint64) {
	k.handles = append(k.handles, h)
	k.s.log.addHandle(k.rec, h)
}

// strict reports whether departures are refused now.
func (k *nfcConform) strict() bool { return k.s.knob().Strict }

// order checks the place of a message of row id in the sequences.
func (k *nfcConform) order(id string, deps []string) []string {
	t := nfcRec
	dep := func(format string, a ...interface{}) {
		deps = append(deps, fmt.Sprintf(format, a...)+" (records: "+t.seqSource+")")
	}
	switch k.phase {
	case phaseConnect:
		want := t.connect[k.seq]
		if id == want {
			k.seq++
		} else {
			dep("out of order: %s where the connect sequence has %s", id, want)
			for j := k.seq + 1; j < len(t.connect); j++ {
				if t.connect[j] == id { // it skipped some: go on from there
					k.seq = j + 1
					break
				}
			}
		}
		if k.seq == len(t.connect) {
			k.phase = phaseData
		}
	case phaseData:
		switch id {
		case "aio.read", "aio.write":
		case t.close[0]:
			k.phase, k.seq = phaseClose, 1
		default:
			dep("out of order: %s after the connect sequence, where the records show reads, writes, then %s",
				id, strings.Join(t.close, ", "))
		}
	case phaseClose:
		if want := t.close[k.seq]; id == want {
			k.seq++
		} else {
			dep("out of order: %s after %s, where the records show only %s", id, k.last, want)
		}
	case phaseDone:
		dep("out of order: %s after %s, the end of the close sequence", id, k.last)
	}
	if k.phase == phaseClose && k.seq == len(t.close) {
		k.phase = phaseDone
	}
	k.last = id
	return deps
}

// finish records m with its row and departures, logs the departures, and
// returns the strict text: "<row id or what>: <departures>", or "".
func (k *nfcConform) finish(m nfcLogMsg, what string) string {
	k.s.log.add(k.rec, m)
	if k.fc != nil {
		k.fc.message(what + " " + m.row)
	}
	if len(m.departs) == 0 {
		return ""
	}
	if m.row != "" {
		what = m.row
	}
	text := what + ": " + strings.Join(m.departs, "; ")
	log.Printf("nfc %s: departs from the records: %s", k.peer, text)
	return text
}

// authd checks one line the client sent after TLS.
func (k *nfcConform) authd(line string) string {
	m := nfcLogMsg{kind: logAuthd, line: line}
	if strings.HasPrefix(line, "SESSION ") {
		m.line = "SESSION <ticket>"
	}
	var row *recRow
	for _, r := range nfcRec.authd {
		if r.line.MatchString(line) {
			row = r
			break
		}
	}
	if row == nil {
		m.departs = append(m.departs, fmt.Sprintf("the line %q is not in the records (records: no row)", m.line))
	} else {
		m.row = row.id
		m.departs = k.order(row.id, m.departs)
	}
	return k.finish(m, "authd")
}

// msg checks one classic 264-byte message (copied) and, for 54, the
// bytes that followed it.
func (k *nfcConform) msg(b, trailer []byte) string {
	m := nfcLogMsg{kind: logMsg, data: append([]byte(nil), b...), trailer: append([]byte(nil), trailer...)}
	if len(b) >= 4 {
		m.typ = le32(b)
	}
	row := nfcRec.msg[m.typ]
	if row == nil {
		m.departs = append(m.departs, fmt.Sprintf("message type %d is not in the records (records: no row)", m.typ))
		return k.finish(m, fmt.Sprintf("msg type %d", m.typ))
	}
	m.row = row.id
	if len(b) != nfcMsgLen {
		m.departs = append(m.departs, fmt.Sprintf("%d bytes, not %d (records: %s)", len(b), nfcMsgLen, row.source))
	}
	m.departs = row.checkFields(b, 4, nil, 0, m.departs)
	if !bytes.Equal(trailer, row.trailer) {
		m.departs = append(m.departs, fmt.Sprintf("trailer %q, the records show %q (records: %s)", trailer, row.trailer, row.source))
	}
	m.departs = k.order(row.id, m.departs)
	return k.finish(m, row.id)
}

// aio checks one AIO message: its row, size, fields, extra, opId, place.
func (k *nfcConform) aio(a *aioMsg) string {
	m := nfcLogMsg{kind: logAIO, typ: a.typ, op: a.op, size: uint32(len(a.payload)), data: a.payload, extraLen: len(a.extra)}
	if a.typ != aioIO && len(a.extra) > 0 && len(a.extra) <= 4096 {
		m.extra = a.extra
	}
	row := nfcRec.aioRow(a.typ, a.payload)
	what := fmt.Sprintf("aio type %d", a.typ)
	if row == nil {
		d := fmt.Sprintf("AIO message type %d is not in the records", a.typ)
		if a.typ == aioIO {
			if len(a.payload) < 12 {
				d = fmt.Sprintf("IO message of %d bytes: no direction at [8]", len(a.payload))
			} else {
				d = fmt.Sprintf("IO message of direction %d at [8]: not in the records", le32(a.payload[8:]))
			}
		}
		m.departs = append(m.departs, d+" (records: no row)")
	} else {
		m.row = row.id
		if len(a.payload) != row.size {
			m.departs = append(m.departs, fmt.Sprintf("payload of %d bytes, the records show %d (records: %s)", len(a.payload), row.size, row.source))
		}
		m.departs = row.checkFields(a.payload, 0, k.handles, len(a.extra), m.departs)
		if row.extra == "" && len(a.extra) > 0 {
			m.departs = append(m.departs, fmt.Sprintf("%d bytes follow the payload; the records show none (records: %s)", len(a.extra), row.source))
		}
	}
	var cont bool
	m.departs, cont = k.opID(a, row, m.departs)
	if row != nil && !cont {
		// A write's later fragments have no place of their own in the
		// sequences.
		m.departs = k.order(row.id, m.departs)
	}
	return k.finish(m, what)
}

// opID checks a's opId: from 0 on each connection, one more per message;
// the fragments of a write share its opId.  cont: a is a later fragment
// of the write in progress.
func (k *nfcConform) opID(a *aioMsg, row *recRow, deps []string) (_ []string, cont bool) {
	dep := func(format string, a ...interface{}) {
		deps = append(deps, fmt.Sprintf(format, a...)+" (records: "+nfcRec.opSource+")")
	}
	isWrite := row != nil && row.id == "aio.write"
	fragLen := int64(len(a.extra))
	if len(a.payload) >= 36 {
		fragLen = int64(le32(a.payload[32:]))
	}
	if isWrite && k.inWrite && a.op == k.writeOp {
		k.writeLeft -= fragLen
		if k.writeLeft <= 0 || fragLen == 0 {
			k.inWrite = false
		}
		return deps, true
	}
	if k.inWrite {
		dep("opId %d before write %d had all its fragments", a.op, k.writeOp)
		k.inWrite = false
	}
	if a.op != k.op {
		dep("opId %d, the next is %d", a.op, k.op)
	}
	k.op = a.op + 1
	if isWrite && len(a.payload) >= 28 && fragLen > 0 {
		if left := int64(le32(a.payload[24:])) - fragLen; left > 0 {
			k.inWrite, k.writeOp, k.writeLeft = true, a.op, left
		}
	}
	return deps, false
}

// ---- SOAP: RetrieveInternalContent and the NfcService ticket calls ----

// soapCallInfo is what the checker reads of a SOAP call: the method
// element's namespace, its argument elements (not _this), and the vm and
// hostForAccess morefs.
type soapCallInfo struct {
	ns, vm, hostForAccess string
	args                  []string
}

func parseSOAPCall(body []byte, method string) soapCallInfo {
	var info soapCallInfo
	d := xml.NewDecoder(bytes.NewReader(body))
	inBody, inMethod := false, false
	for {
		tok, err := d.Token()
		if err != nil {
			return info
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case !inBody:
				inBody = t.Name.Local == "Body"
			case !inMethod:
				if t.Name.Local != method {
					return info
				}
				inMethod, info.ns = true, t.Name.Space
			default: // an argument: read it whole
				var s string
				if d.DecodeElement(&s, &t) != nil {
					return info
				}
				switch t.Name.Local {
				case "_this":
					continue
				case "vm":
					info.vm = strings.TrimSpace(s)
				case "hostForAccess":
					info.hostForAccess = strings.TrimSpace(s)
				}
				info.args = append(info.args, t.Name.Local)
			}
		case xml.EndElement:
			if inMethod {
				return info // the method element ended
			}
		}
	}
}

// nfcSOAPCheck checks a RetrieveInternalContent or NfcService call
// against the "soap" rows (the namespace, every argument the row lists and
// no other, hostForAccess the VM's runtime.host) and records it; in strict
// mode a departing call is answered with an InvalidRequest fault (then it
// returns true).
func (l *Lab) nfcSOAPCheck(w http.ResponseWriter, r *http.Request, body []byte, method string) bool {
	info := parseSOAPCall(body, method)
	rec := &nfcSOAPRec{Method: method, NS: info.ns, Args: nonNil(info.args), HostForAccess: info.hostForAccess}
	if v := l.byRef[types.ManagedObjectReference{Type: "VirtualMachine", Value: info.vm}]; v != nil {
		simulator.Map.WithLock(v.obj, func() {
			if v.obj.Runtime.Host != nil {
				rec.VMHost = v.obj.Runtime.Host.Value
			}
		})
	}
	row := nfcRec.soap[method]
	what := method
	if row == nil {
		rec.Departures = append(rec.Departures, fmt.Sprintf("the SOAP method %s is not in the records (records: no row)", method))
	} else {
		rec.Row, what = row.id, row.id
		dep := func(format string, a ...interface{}) {
			rec.Departures = append(rec.Departures, fmt.Sprintf(format, a...)+" (records: "+row.source+")")
		}
		if info.ns != row.ns {
			dep("namespace %s, the records show %s", info.ns, row.ns)
		}
		for _, a := range row.args {
			found := false
			for _, b := range info.args {
				found = found || a == b
			}
			if !found {
				dep("no %s argument", a)
			} else if a == "hostForAccess" && info.hostForAccess != rec.VMHost {
				dep("hostForAccess %s, the VM runs on %s", orNone(info.hostForAccess), orNone(rec.VMHost))
			}
		}
		for _, b := range info.args {
			found := false
			for _, a := range row.args {
				found = found || a == b
			}
			if !found {
				dep("a %s argument, which the records do not show (they show %s)", b, argList(row.args))
			}
		}
	}
	rec.Departures = nonNil(rec.Departures)
	l.nfc.log.addSOAP(rec)
	if len(rec.Departures) == 0 {
		return false
	}
	text := what + ": " + strings.Join(rec.Departures, "; ")
	log.Printf("nfc soap %s: departs from the records: %s", r.RemoteAddr, text)
	if !l.nfc.knob().Strict {
		return false
	}
	writeFault(w, "vmdkfs-lab strict: "+text, &types.InvalidRequest{})
	return true
}

// malformed records a message the AIO reader could not take (a bad magic,
// a payload or an extra too large): the link is closed.
func (k *nfcConform) malformed(h [16]byte, why error) {
	m := nfcLogMsg{kind: logAIO, typ: le32(h[4:]), op: le32(h[12:]), size: le32(h[8:]),
		departs: []string{fmt.Sprintf("%v: the link was closed (records: %s)", why, nfcRec.sources["open"])}}
	k.finish(m, fmt.Sprintf("aio type %d", m.typ))
}

func argList(args []string) string {
	if len(args) == 0 {
		return "none"
	}
	return strings.Join(args, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
