package main

// Faults at chosen messages of an NFC connection (/lab/nfc?fault=...), for
// the fault matrix (tests/test-faults.sh).
//
// SIMULATED: a host or a relay in front of it that closes a link, goes
// silent, sends garbage (a broken TLS record under nbdssl), trickles
// bytes, or refuses connections.  The message count is the conformance
// recorder's: every authd line, classic message and AIO message (each
// write fragment one) the client sent on that connection, from 1.

import (
	"crypto/rand"
	"log"
	"net"
	"sync"
	"time"
)

// nfcFault is the knob: on the Conn-th connection accepted after it was
// set (1: the next), when the client's At-th message is in (before the
// server answers it), do What.
type nfcFault struct {
	What      string `json:"what"` // close | stall | garbage | trickle
	At        int    `json:"at"`
	Conn      int    `json:"conn"`
	TrickleMs int64  `json:"trickle_ms"` // trickle: the pause after each byte
	Fired     int    `json:"fired"`      // times it went off (stays after)
}

// faultConn is a connection's socket as the lab's server sees it: the
// fault, when one is aimed at it, acts here.
type faultConn struct {
	net.Conn
	mu      sync.Mutex
	trickle time.Duration
	fault   *nfcFault // this connection's, or nil
	msgs    int
	peer    string
	s       *nfcServer
}

// CloseWrite half-closes the socket below (a cut in the middle of a
// read: the peer reads what was sent, then EOF).  A full Close with the
// peer's requests unread would reset the link, and the peer could lose
// the bytes sent before.
func (f *faultConn) CloseWrite() error {
	if cw, ok := f.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return f.Conn.Close()
}

func (f *faultConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	d := f.trickle
	f.mu.Unlock()
	if d == 0 {
		return f.Conn.Write(p)
	}
	for i := range p {
		if _, err := f.Conn.Write(p[i : i+1]); err != nil {
			return i, err
		}
		time.Sleep(d)
	}
	return len(p), nil
}

// message counts one message the client sent; the fault goes off at its
// message.
func (f *faultConn) message(what string) {
	f.mu.Lock()
	f.msgs++
	ft := f.fault
	if ft == nil || f.msgs != ft.At {
		f.mu.Unlock()
		return
	}
	f.fault = nil
	f.mu.Unlock()
	f.s.mu.Lock()
	f.s.fault.Fired++
	stall := time.Duration(f.s.knobs.StallMs) * time.Millisecond
	f.s.mu.Unlock()
	log.Printf("nfc %s: fault %s at message %d (%s)", f.peer, ft.What, ft.At, what)
	switch ft.What {
	case "close":
		_ = f.Conn.Close()
	case "stall":
		time.Sleep(stall)
		_ = f.Conn.Close()
	case "garbage":
		junk := make([]byte, 64)
		_, _ = rand.Read(junk)
		_, _ = f.Conn.Write(junk)
		_ = f.Conn.Close()
	case "trickle":
		f.mu.Lock()
		f.trickle = time.Duration(ft.TrickleMs) * time.Millisecond
		f.mu.Unlock()
	}
}

// accepted wraps a new connection; the fault is aimed at it when its turn
// has come.  false: refuse it (the refuse knob: closed before the
// greeting, as by a host at its limit of NFC connections; GUESS: a real
// host may answer first).
func (s *nfcServer) accepted(raw net.Conn) (*faultConn, bool) {
	fc := &faultConn{Conn: raw, peer: raw.RemoteAddr().String(), s: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse > 0 {
		s.refuse--
		s.stats.Refused++
		return fc, false
	}
	if s.fault.What != "" && s.fault.Conn > 0 {
		s.fault.Conn--
		if s.fault.Conn == 0 {
			c := s.fault
			fc.fault = &c
		}
	}
	return fc, true
}
