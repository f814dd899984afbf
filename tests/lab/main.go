// vmdkfs-lab: a vCenter (or ESXi) simulator for vmdkfs's tests.
//
// It is govmomi's vcsim (the "simulator" package of Debian's
// golang-github-vmware-govmomi-dev, 0.24) with a few behaviours added that
// vmdkfs depends on and vcsim lacks.  Everything this program adds on top of
// vcsim is marked "SIMULATED:" in the code and listed in README.md.
//
// usage: vmdkfs-lab -dir DIR [-esx] [-listen 127.0.0.1:0] [-env FILE]
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

const (
	defaultVCUser   = "vmdkfs@vsphere.local"
	defaultESXUser  = "root"
	defaultPassword = "vmdkfs-Lab&Pass1" // '&' on purpose: clients must XML-escape credentials
)

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("vmdkfs-lab: ")

	dir := flag.String("dir", "", "working folder: datastore, certificate, env file (required)")
	esx := flag.Bool("esx", false, "serve an ESXi host (HostAgent) instead of vCenter")
	listen := flag.String("listen", "127.0.0.1:0", "SDK listen address (loopback only)")
	controlAddr := flag.String("control", "127.0.0.1:0", "control endpoint listen address (plain HTTP, loopback only)")
	nfcAddr := flag.String("nfc", "127.0.0.1:0", "authd/NFC listen address (TLS, loopback only; ESXi's port 902)")
	envFile := flag.String("env", "", "env file to write once listening (default DIR/lab.env)")
	user := flag.String("user", "", "the one user accepted (default "+defaultVCUser+", or "+defaultESXUser+" with -esx)")
	password := flag.String("password", defaultPassword, "the one password accepted")
	diskMiB := flag.Int("disk-mib", 16, "size of each VM disk in MiB (at least 8)")
	nvms := flag.Int("vms", 2, "number of VMs")
	firstDisks := flag.Int("first-vm-disks", 2, "number of disks of the first VM (the others have one)")
	descStyle := flag.String("descriptor", "vmfs", "base disk descriptor style: vmfs (as ESXi writes) or monolithicFlat (as qemu-img writes)")
	idle := flag.Duration("session-idle", 0, "expire sessions idle for this long (0: never; also /lab/idle)")
	trace := flag.Bool("trace", false, "log SOAP traffic to stderr")
	rawXML := flag.Bool("raw-xml", false, "send vcsim's XML as is (\"XMLSchema-instance:type\" instead of \"xsi:type\")")
	stream := flag.String("stream", "", "make bench's plain stream instead: tcp or tls (stream.go)")
	streamMiB := flag.Int("stream-mib", 1024, "with -stream: MiB to send")
	streamCert := flag.String("stream-cert", "", "with -stream tls: the certificate (PEM)")
	streamKey := flag.String("stream-key", "", "with -stream tls: its key (PEM)")
	flag.Parse()
	if *stream != "" {
		streamServe(*stream, *streamMiB, *streamCert, *streamKey)
	}
	// Hidden: VMDKFS_LAB_CPUPROFILE=FILE writes a CPU profile of the whole
	// run (until SIGTERM/SIGINT) for "go tool pprof -top BINARY FILE".
	if f := os.Getenv("VMDKFS_LAB_CPUPROFILE"); f != "" {
		pf, err := os.Create(f)
		if err != nil {
			log.Fatalf("cpu profile: %v", err)
		}
		if err = pprof.StartCPUProfile(pf); err != nil {
			log.Fatalf("cpu profile: %v", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = pf.Close()
		}()
	}

	if *dir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: vmdkfs-lab -dir DIR [-esx] [-listen 127.0.0.1:0] [-env FILE]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if *diskMiB < 8 {
		log.Fatal("-disk-mib must be at least 8")
	}
	if *nvms < 1 || *firstDisks < 1 || *firstDisks > 7 {
		log.Fatal("-vms must be at least 1 and -first-vm-disks between 1 and 7")
	}
	if *descStyle != "vmfs" && *descStyle != "monolithicFlat" {
		log.Fatal("-descriptor must be vmfs or monolithicFlat")
	}
	for _, a := range []string{*listen, *controlAddr, *nfcAddr} {
		if err := checkLoopback(a); err != nil {
			log.Fatal(err)
		}
	}
	for _, tool := range []string{"qemu-img", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			log.Fatalf("%s not found (Debian package qemu-utils)", tool)
		}
	}
	if *user == "" {
		*user = defaultVCUser
		if *esx {
			*user = defaultESXUser
		}
	}

	abs, err := filepath.Abs(*dir)
	if err != nil {
		log.Fatal(err)
	}
	if err = os.MkdirAll(abs, 0o755); err != nil {
		log.Fatal(err)
	}
	if *envFile == "" {
		*envFile = filepath.Join(abs, "lab.env")
	}
	_ = os.Remove(*envFile) // tests wait for it to appear
	simulator.Trace = *trace

	// The simulator creates each datastore as a temporary folder: put it in DIR.
	_ = os.Setenv("TMPDIR", abs)

	var model *simulator.Model
	if *esx {
		model = simulator.ESX()
		model.Machine = *nvms
	} else {
		model = simulator.VPX()
		// Small inventory: 1 datacenter, 1 cluster with 1 host, no standalone
		// host, no distributed switch.
		model.Host = 0
		model.Cluster = 1
		model.ClusterHost = 1
		model.Portgroup = 0
		model.Machine = *nvms
	}
	start := time.Now()
	if err = model.Create(); err != nil {
		log.Fatalf("creating the inventory: %v", err)
	}

	lab := newLab(*esx, *user, *password, *descStyle)
	lab.idle = *idle
	lab.rawXML = *rawXML
	if err = lab.setupInventory(int64(*diskMiB)<<20, *firstDisks); err != nil {
		log.Fatalf("creating the disks: %v", err)
	}

	cert, certFile, err := loadOrCreateCert(abs)
	if err != nil {
		log.Fatalf("certificate: %v", err)
	}
	lab.certFile = certFile
	sha1, sha256 := thumbprints(cert.Certificate[0])
	if lab.nfc, err = lab.startNFC(abs, *nfcAddr, sha256); err != nil {
		log.Fatalf("NFC server: %v", err)
	}

	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *password)}
	srv := model.Service.NewServer()
	// Nobody knows the port before the env file is written, so no request
	// arrives while the handler is being wrapped (the simulator starts
	// serving inside NewServer, leaving no earlier hook).
	lab.inner = srv.Config.Handler
	srv.Config.Handler = lab
	oldState := srv.Config.ConnState
	srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if oldState != nil {
			oldState(c, st)
		}
		if st == http.StateNew && lab.takeAcceptDrop() {
			_ = c.Close()
		}
	}
	// Publish the two writes above to the server's goroutines: the server
	// takes this mutex (http.Server.mu) when it accepts a connection, before
	// it reads ConnState and Handler.
	srv.Config.RegisterOnShutdown(func() {})
	sdkAddr := srv.Listener.Addr().(*net.TCPAddr)

	cl, err := net.Listen("tcp", *controlAddr)
	if err != nil {
		log.Fatalf("control listener: %v", err)
	}
	go func() { _ = http.Serve(cl, lab.controlHandler()) }()
	go lab.reaper()

	host := sdkAddr.IP.String()
	lab.sdkURL = fmt.Sprintf("https://%s/sdk", net.JoinHostPort(host, strconv.Itoa(sdkAddr.Port)))
	lab.controlURL = fmt.Sprintf("http://%s/lab", cl.Addr().String())

	var names []string
	for _, v := range lab.vms {
		names = append(names, v.name)
	}
	first := lab.vms[0]
	env := [][2]string{
		{"LAB_URL", lab.sdkURL},
		{"LAB_HOST", host},
		{"LAB_PORT", strconv.Itoa(sdkAddr.Port)},
		{"LAB_CERT", certFile},
		{"LAB_THUMBPRINT_SHA1", sha1},
		{"LAB_THUMBPRINT_SHA256", sha256},
		{"LAB_USER", *user},
		{"LAB_PASSWORD", *password},
		{"LAB_DATASTORE", lab.dsName},
		{"LAB_DATASTORE_DIR", lab.dsDir},
		{"LAB_DATACENTER", lab.dcName},
		{"LAB_CONTROL", lab.controlURL},
		{"LAB_PID", strconv.Itoa(os.Getpid())},
		{"LAB_MODE", map[bool]string{true: "esx", false: "vpx"}[*esx]},
		{"LAB_API_TYPE", model.ServiceContent.About.ApiType},
		{"LAB_VMS", strings.Join(names, " ")},
		{"LAB_VM", first.name},
		{"LAB_VM_MOREF", first.ref.Value},
		{"LAB_DISK_MIB", strconv.Itoa(*diskMiB)},
		{"LAB_NFC_PORT", strconv.Itoa(lab.nfc.port)},
		{"LAB_NFC_CERT", lab.nfc.certFile},
		{"LAB_NFC_THUMBPRINT_SHA1", lab.nfc.sha1},
		{"LAB_NFC_THUMBPRINT_SHA256", lab.nfc.sha256},
	}
	if err = writeEnv(*envFile, env); err != nil {
		log.Fatalf("env file: %v", err)
	}
	log.Printf("%s listening on %s (control %s), ready in %v; env in %s",
		map[bool]string{true: "ESXi", false: "vCenter"}[*esx], lab.sdkURL, lab.controlURL,
		time.Since(start).Round(time.Millisecond), *envFile)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Printf("%v: stopping", s)
	_ = os.Remove(*envFile)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Config.Shutdown(ctx)
	// The datastore folder stays in DIR for post-mortem; the caller removes DIR.
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad address %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not loopback: the lab accepts a fixed password and must not be reachable from elsewhere", addr)
	}
	return nil
}

// writeEnv writes shell-sourceable KEY='value' lines to FILE.tmp, then
// renames it to FILE, so that a reader never sees a partial file.
func writeEnv(file string, kv [][2]string) error {
	var b strings.Builder
	b.WriteString("# written by vmdkfs-lab; source it from sh/bash\n")
	for _, p := range kv {
		fmt.Fprintf(&b, "%s='%s'\n", p[0], strings.ReplaceAll(p[1], "'", `'\''`))
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

func sortedKeys(m map[string]int) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
