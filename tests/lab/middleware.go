package main

// The lab's HTTP layer in front of the simulator.
//
// vcsim dispatches a SOAP call to a method of the Go object registered for
// _this, but its own code type-asserts its concrete types (a wrapped
// *simulator.VirtualMachine makes it panic), so the lab cannot override
// methods by wrapping objects.  Instead this handler sees every request
// first: it applies the control endpoint's faults, delays and drops,
// enforces sessions, disabled methods, and handles the methods the lab adds
// or extends, calling the simulator in-process or forwarding to it.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type disabledEntry struct {
	Entity       types.ManagedObjectReference `json:"entity"`
	Method       string                       `json:"method"`
	Source       string                       `json:"sourceId"`
	Reason       string                       `json:"reasonId,omitempty"`
	SessionScope bool                         `json:"sessionScope,omitempty"`
	Session      string                       `json:"-"`
	Time         time.Time                    `json:"time"`
}

// Methods that need no session (vSphere answers them before Login).
var publicMethods = map[string]bool{
	"RetrieveServiceContent":      true,
	"RetrieveInternalContent":     true,
	"Login":                       true,
	"LoginByToken":                true,
	"LoginExtensionByCertificate": true,
	"LoginExtensionBySubjectName": true,
	"CloneSession":                true,
}

// reentryHeader marks the lab's own second pass over a request (a drop
// that carries the request out first): no injections, not counted again.
const reentryHeader = "X-Vmdkfs-Lab-Reentry"

// hangUp writes BYTES (may be nil) on the raw connection and closes it.
func hangUp(w http.ResponseWriter, bytes []byte) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, buf, err := hj.Hijack(); err == nil {
			if len(bytes) > 0 {
				_, _ = buf.Write(bytes)
				_ = buf.Flush()
			}
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (l *Lab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	isSDK := r.Method == http.MethodPost && (r.URL.Path == "/sdk" || r.URL.Path == "/sdk/vimService")
	var body []byte
	var name string
	var this types.ManagedObjectReference
	if isSDK {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, 64<<20))
		_ = r.Body.Close()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		name, this = soapCall(body)
		if name == "" {
			name = "?"
		}
	} else {
		seg := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]
		name = r.Method + " /" + seg
	}
	reentry := r.Header.Get(reentryHeader) != ""
	if !reentry {
		l.count(name)
	}

	// ---- control endpoint injections ----
	if mode := ""; !reentry {
		mode = l.takeDrop(name)
		switch mode {
		case "close":
			// SIMULATED: a lost connection: the request was read, no reply.
			hangUp(w, nil)
			return
		case "after", "truncate":
			// SIMULATED: the request is carried out, then the answer is
			// lost (after) or cut halfway (truncate).
			rec := httptest.NewRecorder()
			r2 := withBody(r, body)
			r2.Header.Set(reentryHeader, "1")
			l.ServeHTTP(rec, r2)
			var half []byte
			if mode == "truncate" {
				resp := rec.Result()
				b, _ := io.ReadAll(resp.Body)
				half = []byte(fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: %d\r\n\r\n",
					resp.StatusCode, http.StatusText(resp.StatusCode), len(b)))
				half = append(half, b[:len(b)/2]...)
			}
			hangUp(w, half)
			return
		case "garbage":
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "\x00\x17garbage from vmdkfs-lab \xff\xfe<<not xml")
			return
		}
	}
	if d := l.takeDelay(name); d > 0 && !reentry {
		time.Sleep(d)
	}
	if f := l.takeFault(name); f != nil && !reentry {
		if f.HTTP != 0 && f.Fault == "" {
			http.Error(w, http.StatusText(f.HTTP), f.HTTP)
			return
		}
		fault, err := newFault(f.Fault, f.Message, this)
		if err != nil {
			fault = &types.SystemError{Reason: err.Error()}
		}
		status := http.StatusInternalServerError
		if f.HTTP != 0 {
			status = f.HTTP
		}
		writeSOAP(w, status, faultXML(f.Message, fault))
		return
	}

	if !isSDK {
		if strings.HasPrefix(r.URL.Path, "/folder") && !l.httpAuthorized(r) {
			// SIMULATED: vSphere's datastore HTTP access needs a session
			// cookie (or HTTP basic credentials); vcsim serves anyone.
			w.Header().Set("WWW-Authenticate", `Basic realm="VMware HTTP server"`)
			http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
			return
		}
		l.inner.ServeHTTP(w, r)
		return
	}
	r = withBody(r, body)
	if !l.rawXML {
		xw := &xsiWriter{ResponseWriter: w}
		defer xw.finish()
		w = xw
	}

	// ---- sessions ----
	session := l.requestSession(r)
	if session == nil && !publicMethods[name] {
		// SIMULATED: vcsim lets RetrieveProperties(Ex) through without a
		// session; vSphere answers every method but the login ones with
		// NotAuthenticated once the session is gone.
		fault, _ := newFault("NotAuthenticated", "", this)
		writeFault(w, "The session is not authenticated.", fault)
		return
	}

	// ---- disabled methods ----
	if src, ok := l.methodDisabled(this, name); ok {
		// SIMULATED: vcsim compares disabledMethod against its Go method
		// names ("RelocateVMTask") so a vSphere name ("RelocateVM_Task") in
		// the list never matched; the lab checks vSphere's names and names
		// the source that disabled the method, as vCenter does.
		msg := "The method is disabled"
		if src != "" {
			msg = fmt.Sprintf("The method is disabled by '%s'", src)
		}
		writeFault(w, msg, &types.MethodDisabled{Source: src})
		return
	}

	switch name {
	case "RetrieveInternalContent":
		if l.nfcSOAPCheck(w, r, body, name) {
			return
		}
		l.retrieveInternalContent(w)
		return
	case "NfcRandomAccessOpenReadonly", "NfcRandomAccessOpenDisk", "NfcGetVmFiles":
		if l.nfcSOAPCheck(w, r, body, name) {
			return
		}
		l.nfcTicketCall(w, body, name, this)
		return
	case "DisableMethods":
		l.disableMethods(w, body, this, session)
		return
	case "EnableMethods":
		l.enableMethods(w, body, this)
		return
	case "CreateSnapshot_Task":
		if v := l.byRef[this]; v != nil {
			l.createSnapshot(w, r, body, v)
			return
		}
	case "RemoveSnapshot_Task", "RemoveAllSnapshots_Task":
		l.removeSnapshots(w, r, body, name, this)
		return
	case "RevertToSnapshot_Task", "RevertToCurrentSnapshot_Task":
		l.revert(w, r, body, name, this)
		return
	case "ReconfigVM_Task":
		l.reconfig(w, r, body, this)
		return
	case "QueryChangedDiskAreas": // cbt.go
		l.queryChangedDiskAreas(w, body, this)
		return
	case "RetrievePropertiesEx":
		l.retrievePaged(w, r, body, this, session)
		return
	case "ContinueRetrievePropertiesEx":
		l.continueRetrieve(w, body, this, session)
		return
	case "CancelRetrievePropertiesEx":
		l.cancelRetrieve(w, body, this, session)
		return
	case "PowerOnVM_Task":
		if v := l.byRef[this]; v != nil && l.nfcLocked(w, v, name) {
			return
		}
	case "RefreshStorageInfo":
		rec := l.forwardRecorded(r, body)
		if v := l.byRef[this]; v != nil {
			v.mu.Lock()
			l.relayout(v)
			v.mu.Unlock()
		}
		sendRecorded(w, rec)
		return
	}
	l.inner.ServeHTTP(w, r)
}

// xsiWriter buffers a SOAP answer and writes the XML Schema instance type
// attribute as vSphere does ("xsi:type", xsi bound on the envelope).
// vcsim's encoder writes "XMLSchema-instance:type" with the namespace
// declared again on each element: equivalent XML, but only a
// namespace-aware parser sees it so (-raw-xml keeps vcsim's form).
type xsiWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (x *xsiWriter) WriteHeader(code int) {
	if x.status == 0 {
		x.status = code
	}
}

func (x *xsiWriter) Write(b []byte) (int, error) {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	return x.buf.Write(b)
}

var (
	xsiDecl   = []byte(` xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance"`)
	xsiPrefix = []byte(`XMLSchema-instance:type=`)
)

func (x *xsiWriter) finish() {
	out := bytes.ReplaceAll(x.buf.Bytes(), xsiDecl, nil)
	out = bytes.ReplaceAll(out, xsiPrefix, []byte(`xsi:type=`))
	if x.status == 0 {
		x.status = http.StatusOK
	}
	x.ResponseWriter.Header().Set("Content-Length", strconv.Itoa(len(out)))
	x.ResponseWriter.WriteHeader(x.status)
	_, _ = x.ResponseWriter.Write(out)
}

func (l *Lab) count(name string) {
	l.mu.Lock()
	l.calls[name]++
	// The order of the calls too (/lab/state call_log, the last 2000;
	// /lab/reset?calls=1 empties it): the fault matrix walks it.
	if len(l.callLog) >= 2000 {
		l.callLog = l.callLog[1:]
	}
	l.callLog = append(l.callLog, name)
	l.mu.Unlock()
}

// ---- sessions ----

// sessionList returns the simulator's current sessions.
func (l *Lab) sessionList() []types.UserSession {
	sm := simulator.Map.SessionManager()
	view, ok := l.ictx.Session.Get(sm.Self).(*simulator.SessionManager)
	if !ok {
		return nil
	}
	return view.SessionList
}

func (l *Lab) terminate(keys []string) {
	sm := simulator.Map.SessionManager()
	for _, k := range keys {
		sm.TerminateSession(l.ictx, &types.TerminateSession{This: sm.Self, SessionId: []string{k}})
	}
}

// expireIdle ends the sessions idle for longer than the idle timeout.
//
// SIMULATED: vCenter ends sessions idle for longer than its timeout (30 min
// by default); vcsim only does so for sessions opened after its global
// timeout was set.  The lab applies the control endpoint's timeout to all.
func (l *Lab) expireIdle() {
	l.mu.Lock()
	idle := l.idle
	l.mu.Unlock()
	if idle <= 0 {
		return
	}
	var old []string
	for _, s := range l.sessionList() {
		if time.Since(s.LastActiveTime) > idle {
			old = append(old, s.Key)
		}
	}
	if len(old) > 0 {
		log.Printf("expiring %d idle session(s)", len(old))
		l.terminate(old)
	}
}

// expireAll ends every session now (control endpoint /lab/expire).
func (l *Lab) expireAll() int {
	var keys []string
	for _, s := range l.sessionList() {
		keys = append(keys, s.Key)
	}
	l.terminate(keys)
	return len(keys)
}

// requestSession returns the live session of the request's cookie, or nil.
func (l *Lab) requestSession(r *http.Request) *types.UserSession {
	l.expireIdle()
	c, err := r.Cookie(soap.SessionCookieName)
	if err != nil {
		return nil
	}
	for _, s := range l.sessionList() {
		if s.Key == c.Value {
			s := s
			return &s
		}
	}
	return nil
}

func (l *Lab) httpAuthorized(r *http.Request) bool {
	if l.requestSession(r) != nil {
		return true
	}
	u, p, ok := r.BasicAuth()
	return ok && u == l.user && p == l.pass
}

// reaper expires idle sessions and drops session-scoped disabled methods
// and pending paged results of sessions that ended.
func (l *Lab) reaper() {
	for range time.Tick(200 * time.Millisecond) {
		l.expireIdle()
		seen := time.Now()
		live := map[string]bool{}
		for _, s := range l.sessionList() {
			live[s.Key] = true
		}
		l.mu.Lock()
		var gone []*disabledEntry
		for _, e := range l.disabled {
			if e.SessionScope && !live[e.Session] {
				gone = append(gone, e)
			}
		}
		l.mu.Unlock()
		for _, e := range gone {
			l.removeDisabled(e.Entity, e.Method, e.Source)
		}
		l.dropPaged(live, seen)
	}
}

// ---- AuthorizationManager.DisableMethods / EnableMethods ----

type morXML struct {
	Type  string `xml:"type,attr"`
	Value string `xml:",chardata"`
}

// dmMethod accepts both forms seen for the method argument: a
// DisabledMethodRequest {method, reasonId} (govmomi's client) or a plain
// method name.
type dmMethod struct {
	Text     string `xml:",chardata"`
	Method   string `xml:"method"`
	ReasonID string `xml:"reasonId"`
}

func (m dmMethod) name() string {
	if m.Method != "" {
		return strings.TrimSpace(m.Method)
	}
	return strings.TrimSpace(m.Text)
}

type dmRequest struct {
	This         morXML     `xml:"_this"`
	Entity       []morXML   `xml:"entity"`
	Method       []dmMethod `xml:"method"`
	Reason       string     `xml:"reason"`
	SourceID     string     `xml:"sourceId"`
	SessionScope bool       `xml:"sessionScope"`
}

func decodeMethod(body []byte, name string, v interface{}) error {
	d := xml.NewDecoder(strings.NewReader(string(body)))
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == name {
			return d.DecodeElement(v, &se)
		}
	}
}

func (l *Lab) checkAuthzCall(w http.ResponseWriter, req *dmRequest, this types.ManagedObjectReference, verb string) ([]mo.Entity, bool) {
	if this.Type != "AuthorizationManager" || simulator.Map.Get(this) == nil {
		writeFault(w, fmt.Sprintf("%s does not implement: %sMethods", this, verb), &types.MethodNotFound{Receiver: this, Method: verb + "Methods"})
		return nil, false
	}
	if l.esx {
		// SIMULATED: what VDDK reports for PrepareForAccess on a host
		// (the method is vCenter's); faultstring as documented.
		msg := "HostAgent is not a VirtualCenter, cannot disable sVmotion"
		if verb == "Enable" {
			msg = "HostAgent is not a VirtualCenter, cannot enable sVmotion"
		}
		writeFault(w, msg, &types.NotSupported{})
		return nil, false
	}
	if req.SourceID == "" {
		writeFault(w, "A specified parameter was not correct: sourceId", &types.InvalidArgument{InvalidProperty: "sourceId"})
		return nil, false
	}
	if len(req.Entity) == 0 || len(req.Method) == 0 {
		p := "entity"
		if len(req.Entity) != 0 {
			p = "method"
		}
		writeFault(w, "A specified parameter was not correct: "+p, &types.InvalidArgument{InvalidProperty: p})
		return nil, false
	}
	var ents []mo.Entity
	for _, e := range req.Entity {
		ref := types.ManagedObjectReference{Type: e.Type, Value: strings.TrimSpace(e.Value)}
		ent, ok := simulator.Map.Get(ref).(mo.Entity)
		if !ok {
			writeFault(w, fmt.Sprintf("The object '%s:%s' has already been deleted or has not been completely created", ref.Type, ref.Value), &types.ManagedObjectNotFound{Obj: ref})
			return nil, false
		}
		ents = append(ents, ent)
	}
	return ents, true
}

// disableMethods implements the internal AuthorizationManager.DisableMethods
// (urn:internalvim25) that VDDK's PrepareForAccess uses.
//
// SIMULATED: vCenter keeps a list of (method, sourceId) per entity, shows
// the methods in the entity's disabledMethod property, refuses the methods
// with MethodDisabled, and throws MethodAlreadyDisabledFault when the same
// source disables the same method twice.  The lab does the same; the
// fault strings are the lab's own.
func (l *Lab) disableMethods(w http.ResponseWriter, body []byte, this types.ManagedObjectReference, session *types.UserSession) {
	var req dmRequest
	if err := decodeMethod(body, "DisableMethods", &req); err != nil {
		writeFault(w, "decoding DisableMethods: "+err.Error(), &types.InvalidRequest{})
		return
	}
	ents, ok := l.checkAuthzCall(w, &req, this, "Disable")
	if !ok {
		return
	}
	l.mu.Lock()
	for _, ent := range ents {
		for _, m := range req.Method {
			for _, e := range l.disabled {
				if e.Entity == ent.Reference() && e.Method == m.name() && e.Source == req.SourceID {
					l.mu.Unlock()
					writeFault(w, fmt.Sprintf("Method %s on %s is already disabled by '%s'", m.name(), ent.Reference().Value, req.SourceID),
						&types.MethodAlreadyDisabledFault{SourceId: req.SourceID})
					return
				}
			}
		}
	}
	for _, ent := range ents {
		for _, m := range req.Method {
			reason := m.ReasonID
			if reason == "" {
				reason = req.Reason
			}
			e := &disabledEntry{Entity: ent.Reference(), Method: m.name(), Source: req.SourceID, Reason: reason,
				SessionScope: req.SessionScope, Time: time.Now()}
			if session != nil {
				e.Session = session.Key
			}
			l.disabled = append(l.disabled, e)
		}
	}
	l.mu.Unlock()
	for _, ent := range ents {
		l.syncDisabled(ent)
	}
	writeSOAP(w, http.StatusOK, `<DisableMethodsResponse xmlns="urn:vim25"></DisableMethodsResponse>`)
}

// enableMethods implements AuthorizationManager.EnableMethods: it drops the
// (method, sourceId) entries; methods not disabled by that source are no
// error (VDDK's EndAccess may be called alone to clean up).
func (l *Lab) enableMethods(w http.ResponseWriter, body []byte, this types.ManagedObjectReference) {
	var req dmRequest
	if err := decodeMethod(body, "EnableMethods", &req); err != nil {
		writeFault(w, "decoding EnableMethods: "+err.Error(), &types.InvalidRequest{})
		return
	}
	ents, ok := l.checkAuthzCall(w, &req, this, "Enable")
	if !ok {
		return
	}
	for _, ent := range ents {
		for _, m := range req.Method {
			l.removeDisabled(ent.Reference(), m.name(), req.SourceID)
		}
	}
	writeSOAP(w, http.StatusOK, `<EnableMethodsResponse xmlns="urn:vim25"></EnableMethodsResponse>`)
}

func (l *Lab) removeDisabled(ref types.ManagedObjectReference, method, source string) {
	l.mu.Lock()
	kept := l.disabled[:0]
	for _, e := range l.disabled {
		if !(e.Entity == ref && e.Method == method && e.Source == source) {
			kept = append(kept, e)
		}
	}
	l.disabled = kept
	l.mu.Unlock()
	if ent, ok := simulator.Map.Get(ref).(mo.Entity); ok {
		l.syncDisabled(ent)
	}
}

// syncDisabled sets the entity's disabledMethod property to the methods
// the lab has disabled on it (each name once).
func (l *Lab) syncDisabled(ent mo.Entity) {
	l.mu.Lock()
	var list []string
	seen := map[string]bool{}
	for _, e := range l.disabled {
		if e.Entity == ent.Reference() && !seen[e.Method] {
			seen[e.Method] = true
			list = append(list, e.Method)
		}
	}
	l.mu.Unlock()
	simulator.Map.WithLock(ent, func() {
		simulator.Map.Update(ent, []types.PropertyChange{{Name: "disabledMethod", Val: list}})
	})
}

// methodDisabled reports whether method is disabled on this, and by whom.
func (l *Lab) methodDisabled(this types.ManagedObjectReference, method string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.disabled {
		if e.Entity == this && e.Method == method {
			return e.Source, true
		}
	}
	return "", false
}
