package main

// Result paging of the PropertyCollector: RetrievePropertiesEx with
// options.maxObjects (or the lab's forced page size, /lab/page?max=N),
// ContinueRetrievePropertiesEx and CancelRetrievePropertiesEx.
//
// SIMULATED: vcsim 0.24 ignores options.maxObjects, never returns a token
// and implements neither ContinueRetrievePropertiesEx nor
// CancelRetrievePropertiesEx.  vCenter returns at most maxObjects
// ObjectContents per RetrieveResult (and may page on its own even without
// maxObjects); RetrieveResult.token is then set and the client calls
// ContinueRetrievePropertiesEx(token) until an answer has no token.  Each
// token may be used once, only in the session and on the PropertyCollector
// that returned it; any other token is refused with InvalidArgument.
//
// The lab lets vcsim collect the whole result, cuts vcsim's answer into its
// <objects> elements (their XML is kept byte for byte, so the xsi:type
// rewrite applies to them as to any answer) and keeps the pages not yet
// sent per token.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25/types"
)

// pagedResult is the rest of a retrieval, waiting for
// ContinueRetrievePropertiesEx.
type pagedResult struct {
	Session string                       `json:"-"`
	PC      types.ManagedObjectReference `json:"property_collector"`
	Objects [][]byte                     `json:"-"` // <objects>...</objects> not sent yet
	Left    int                          `json:"objects_left"`
	Page    int                          `json:"page_size"`
	Time    time.Time                    `json:"time"`
}

type rpexRequest struct {
	Options struct {
		MaxObjects *int32 `xml:"maxObjects"`
	} `xml:"options"`
}

type tokenRequest struct {
	Token string `xml:"token"`
}

// pageSize is the page size for a RetrievePropertiesEx request: the
// smaller of its options.maxObjects (when > 0) and the lab's forced page
// size (when > 0); 0 means no paging.
func (l *Lab) pageSize(body []byte) int {
	var req rpexRequest
	_ = decodeMethod(body, "RetrievePropertiesEx", &req)
	n := 0
	if m := req.Options.MaxObjects; m != nil && *m > 0 {
		n = int(*m)
	}
	l.mu.Lock()
	forced := l.forcedPage
	l.mu.Unlock()
	if forced > 0 && (n == 0 || forced < n) {
		n = forced
	}
	return n
}

func newToken() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return fmt.Sprintf("%x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b)
}

// splitReturnval finds the <returnval> element of a SOAP answer and returns
// the offsets just inside it (after its start tag, at its end tag) and the
// byte ranges of its <objects> children.  ok is false when the answer has
// no returnval, or anything but objects in it.
func splitReturnval(body []byte) (inner, end int, objects [][]byte, ok bool) {
	d := xml.NewDecoder(bytes.NewReader(body))
	depth, rvDepth := 0, -1
	for {
		off := int(d.InputOffset())
		tok, err := d.Token()
		if err != nil {
			return 0, 0, nil, false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case rvDepth < 0 && depth == 4 && t.Name.Local == "returnval":
				// Envelope > Body > XxxResponse > returnval
				rvDepth = depth
				inner = int(d.InputOffset())
			case rvDepth > 0 && depth == rvDepth+1:
				if t.Name.Local != "objects" {
					return 0, 0, nil, false
				}
				if err := d.Skip(); err != nil {
					return 0, 0, nil, false
				}
				depth--
				objects = append(objects, body[off:int(d.InputOffset())])
			}
		case xml.EndElement:
			if depth == rvDepth {
				return inner, off, objects, true
			}
			depth--
		}
	}
}

// retrievePaged forwards RetrievePropertiesEx to vcsim and, when the result
// has more objects than the page size, answers with the first page and a
// token.
func (l *Lab) retrievePaged(w http.ResponseWriter, r *http.Request, body []byte, this types.ManagedObjectReference, session *types.UserSession) {
	size := l.pageSize(body)
	rec := l.forwardRecorded(r, body)
	if size <= 0 || rec.Code != http.StatusOK || session == nil {
		sendRecorded(w, rec)
		return
	}
	out := rec.Body.Bytes()
	inner, end, objects, ok := splitReturnval(out)
	if !ok || len(objects) <= size {
		sendRecorded(w, rec)
		return
	}
	token := newToken()
	l.mu.Lock()
	l.paged[token] = &pagedResult{Session: session.Key, PC: this, Objects: objects[size:],
		Left: len(objects) - size, Page: size, Time: time.Now()}
	l.mu.Unlock()
	var b bytes.Buffer
	b.Write(out[:inner])
	b.WriteString("<token>" + xmlEscape(token) + "</token>")
	for _, o := range objects[:size] {
		b.Write(o)
	}
	b.Write(out[end:])
	rec.Body = &b
	rec.Header().Del("Content-Length")
	sendRecorded(w, rec)
}

// takeToken removes and returns the retrieval of token, if it belongs to
// this session and PropertyCollector.
func (l *Lab) takeToken(token string, this types.ManagedObjectReference, session *types.UserSession) *pagedResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.paged[token]
	if p == nil || session == nil || p.Session != session.Key || p.PC != this {
		return nil
	}
	delete(l.paged, token)
	return p
}

// badToken answers a token that is unknown, used up, cancelled, or from
// another session or PropertyCollector.  vSphere documents InvalidArgument
// for both methods ("if the token does not match the token from the
// previous RetrieveResult returned on the same session by the same
// PropertyCollector"); the faultstring is vSphere's text for
// InvalidArgument, invalidProperty names the argument.
func badToken(w http.ResponseWriter) {
	writeFault(w, "A specified parameter was not correct: token", &types.InvalidArgument{InvalidProperty: "token"})
}

// continueRetrieve implements ContinueRetrievePropertiesEx: the next page,
// with a new token when objects remain.
func (l *Lab) continueRetrieve(w http.ResponseWriter, body []byte, this types.ManagedObjectReference, session *types.UserSession) {
	var req tokenRequest
	if err := decodeMethod(body, "ContinueRetrievePropertiesEx", &req); err != nil {
		writeFault(w, "decoding ContinueRetrievePropertiesEx: "+err.Error(), &types.InvalidRequest{})
		return
	}
	token := strings.TrimSpace(req.Token)
	p := l.takeToken(token, this, session)
	if p == nil {
		badToken(w)
		return
	}
	n := p.Page
	if n > len(p.Objects) {
		n = len(p.Objects)
	}
	var b strings.Builder
	b.WriteString(`<ContinueRetrievePropertiesExResponse xmlns="urn:vim25"><returnval>`)
	if rest := p.Objects[n:]; len(rest) > 0 {
		next := newToken()
		l.mu.Lock()
		l.paged[next] = &pagedResult{Session: p.Session, PC: p.PC, Objects: rest, Left: len(rest), Page: p.Page, Time: time.Now()}
		l.mu.Unlock()
		b.WriteString("<token>" + xmlEscape(next) + "</token>")
	}
	for _, o := range p.Objects[:n] {
		b.Write(o)
	}
	b.WriteString(`</returnval></ContinueRetrievePropertiesExResponse>`)
	writeSOAP(w, http.StatusOK, b.String())
}

// cancelRetrieve implements CancelRetrievePropertiesEx: the rest of the
// retrieval is discarded.
func (l *Lab) cancelRetrieve(w http.ResponseWriter, body []byte, this types.ManagedObjectReference, session *types.UserSession) {
	var req tokenRequest
	if err := decodeMethod(body, "CancelRetrievePropertiesEx", &req); err != nil {
		writeFault(w, "decoding CancelRetrievePropertiesEx: "+err.Error(), &types.InvalidRequest{})
		return
	}
	token := strings.TrimSpace(req.Token)
	if l.takeToken(token, this, session) == nil {
		badToken(w)
		return
	}
	writeSOAP(w, http.StatusOK, `<CancelRetrievePropertiesExResponse xmlns="urn:vim25"></CancelRetrievePropertiesExResponse>`)
}

// dropPaged discards the retrievals of sessions that ended: not live at
// time seen, made before seen (a later one may be of a newer session).
func (l *Lab) dropPaged(live map[string]bool, seen time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for t, p := range l.paged {
		if !live[p.Session] && p.Time.Before(seen) {
			delete(l.paged, t)
		}
	}
}
