// The plain streams of make bench (scripts/bench-nfc.sh): the ceilings an
// NFC read is set against.  "vmdkfs-lab -stream tcp|tls -stream-mib N
// -stream-cert C -stream-key K" listens on 127.0.0.1, prints its port on
// stdout, sends N MiB to the one client that connects, and exits.
//
// It sends the way the NFC server answers reads (nfcConn.reads): one
// Write of a little over 1 MiB per reply, through the same crypto/tls
// configuration as the NFC listener (the same certificate, MinVersion,
// Go's defaults for the rest) and the same batchConn under it.  So a client that negotiates
// the way vmdkfs does gets the same cipher suite and the same TLS records
// (16 KiB, Go's record sizing) as nbdssl, with no NFC framing, no disk
// file and no vmdkfs: what the link alone costs.  Not SIMULATED: nothing
// of a host is imitated here.
package main

import (
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"os"
)

// The bytes of one NFC read reply as the lab writes it with vmdkfs's
// defaults: one request of 1 MiB in 16 fragments of 64 KiB, each behind
// its 60-byte header.
const streamChunk = 16 * (fragHead + 64<<10)

func streamServe(mode string, mib int, certFile, keyFile string) {
	var conf *tls.Config
	if mode == "tls" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			log.Fatalf("stream: %v", err)
		}
		// As the NFC listener (newNFCServer).
		conf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	} else if mode != "tcp" {
		log.Fatal("-stream must be tcp or tls")
	}
	if mib < 1 {
		log.Fatal("-stream-mib must be at least 1")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("stream: %v", err)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	c, err := ln.Accept()
	if err != nil {
		log.Fatalf("stream: accept: %v", err)
	}
	_ = ln.Close()
	flush := func() error { return nil }
	if conf != nil {
		// As the NFC server's nbdssl session (handle, batchConn).
		bc := &batchConn{Conn: c}
		tc := tls.Server(bc, conf)
		if err = tc.Handshake(); err != nil {
			log.Fatalf("stream: handshake: %v", err)
		}
		bc.batch = true
		c, flush = tc, bc.flush
	}
	// Not zeros: the same kind of bytes as a disk of random data.
	buf := make([]byte, streamChunk)
	for i := range buf {
		buf[i] = byte(uint32(i) * 2654435761 >> 24)
	}
	left := int64(mib) << 20
	for left > 0 {
		n := int64(len(buf))
		if n > left {
			n = left
		}
		if _, err = c.Write(buf[:n]); err == nil {
			err = flush()
		}
		if err != nil {
			log.Fatalf("stream: write: %v", err)
		}
		left -= n
	}
	_ = c.Close()
	os.Exit(0)
}
