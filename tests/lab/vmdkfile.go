package main

// Reading and editing VMDK descriptors: plain-text descriptor files
// (monolithicFlat, vmfs) and the descriptor embedded in a hosted sparse
// extent (monolithicSparse, "KDMV" header).  The images themselves are made
// by qemu-img / qemu-io; this only fixes up descriptors.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

const sparseMagic = 0x564d444b // "KDMV" little-endian

// descriptorArea locates the embedded descriptor of a hosted sparse
// extent; ok is false for a plain-text descriptor file.
func descriptorArea(f *os.File) (off, size int64, ok bool, err error) {
	var h [512]byte
	n, err := f.ReadAt(h[:], 0)
	if n < 64 {
		return 0, 0, false, nil // short: a text descriptor
	}
	if binary.LittleEndian.Uint32(h[0:4]) != sparseMagic {
		return 0, 0, false, nil
	}
	off = int64(binary.LittleEndian.Uint64(h[28:36])) * 512
	size = int64(binary.LittleEndian.Uint64(h[36:44])) * 512
	if off == 0 || size == 0 {
		return 0, 0, false, fmt.Errorf("%s: sparse extent without an embedded descriptor", f.Name())
	}
	return off, size, true, nil
}

// readDescriptor returns the descriptor text of a .vmdk (trailing NULs removed).
func readDescriptor(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	off, size, embedded, err := descriptorArea(f)
	if err != nil {
		return "", err
	}
	var buf []byte
	if embedded {
		buf = make([]byte, size)
		if _, err = f.ReadAt(buf, off); err != nil {
			return "", err
		}
	} else {
		st, err := f.Stat()
		if err != nil {
			return "", err
		}
		if st.Size() > 1<<20 {
			return "", fmt.Errorf("%s: not a descriptor (%d bytes)", path, st.Size())
		}
		buf = make([]byte, st.Size())
		if _, err = f.ReadAt(buf, 0); err != nil {
			return "", err
		}
	}
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	return string(buf), nil
}

// writeDescriptor replaces the descriptor text of a .vmdk in place.
func writeDescriptor(path, text string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	off, size, embedded, err := descriptorArea(f)
	if err != nil {
		return err
	}
	if embedded {
		if int64(len(text)) > size {
			return fmt.Errorf("%s: descriptor of %d bytes does not fit in %d", path, len(text), size)
		}
		buf := make([]byte, size)
		copy(buf, text)
		if _, err = f.WriteAt(buf, off); err != nil {
			return err
		}
		return f.Sync()
	}
	if err = f.Truncate(0); err != nil {
		return err
	}
	if _, err = f.WriteAt([]byte(text), 0); err != nil {
		return err
	}
	return f.Sync()
}

// normalizeDescriptor undoes two habits of qemu that VMware does not
// share: NUL padding after a plain-text descriptor, and CID / parentCID
// written without leading zeros (VMware writes %08x).
func normalizeDescriptor(path string) error {
	text, err := readDescriptor(path)
	if err != nil {
		return err
	}
	fixed := text
	for _, k := range []string{"CID", "parentCID"} {
		if v := descValue(fixed, k); v != "" && len(v) < 8 {
			fixed = setDescValues(fixed, [][2]string{{k, strings.Repeat("0", 8-len(v)) + v}})
		}
	}
	if fixed != text {
		return writeDescriptor(path, fixed)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, _, embedded, err := descriptorArea(f)
	if err != nil || embedded {
		return err
	}
	st, err := f.Stat()
	if err != nil || st.Size() == int64(len(text)) {
		return err
	}
	return writeDescriptor(path, text)
}

// descValue reads KEY=value (value unquoted) from descriptor text.
func descValue(text, key string) string {
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.IndexByte(line, '='); i > 0 && strings.TrimSpace(line[:i]) == key {
			return strings.Trim(strings.TrimSpace(line[i+1:]), `"`)
		}
	}
	return ""
}

// setDescValues sets KEY=value lines (quoted values keep their quotes) in
// the header part of descriptor text, adding missing keys after createType.
func setDescValues(text string, kv [][2]string) string {
	lines := strings.Split(text, "\n")
	for _, p := range kv {
		done := false
		for i, line := range lines {
			t := strings.TrimSpace(line)
			if j := strings.IndexByte(t, '='); j > 0 && strings.TrimSpace(t[:j]) == p[0] {
				lines[i] = p[0] + "=" + p[1]
				done = true
				break
			}
		}
		if !done {
			for i, line := range lines {
				if strings.HasPrefix(strings.TrimSpace(line), "createType=") {
					lines = append(lines[:i+1], append([]string{p[0] + "=" + p[1]}, lines[i+1:]...)...)
					done = true
					break
				}
			}
		}
		if !done {
			lines = append(lines, p[0]+"="+p[1])
		}
	}
	return strings.Join(lines, "\n")
}

var extentLine = regexp.MustCompile(`^(RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s+"([^"]+)"`)

// extentFiles lists the extent file names of descriptor text that are not
// the descriptor file itself (e.g. "vm-flat.vmdk"), relative to its folder.
func extentFiles(path string) []string {
	text, err := readDescriptor(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(text, "\n") {
		m := extentLine.FindStringSubmatch(strings.TrimSpace(line))
		if m != nil && m[2] != filepath.Base(path) {
			out = append(out, m[2])
		}
	}
	return out
}

// vmfsStyle rewrites qemu's monolithicFlat descriptor the way ESXi writes
// a base disk on VMFS: createType="vmfs", a VMFS extent, ddb.uuid,
// ddb.longContentID and the controller's adapter type.
func vmfsStyle(text, uuid16, adapter string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case t == "version=1":
			out = append(out, line, `encoding="UTF-8"`)
			continue
		case strings.HasPrefix(t, "createType="):
			out = append(out, `createType="vmfs"`)
			continue
		case extentLine.MatchString(t):
			f := strings.Fields(t)
			if len(f) >= 4 && f[2] == "FLAT" {
				out = append(out, fmt.Sprintf("%s %s VMFS %s", f[0], f[1], f[3]))
				continue
			}
		case strings.HasPrefix(t, "ddb.adapterType"):
			out = append(out, fmt.Sprintf("ddb.adapterType = %q", adapter))
			continue
		case strings.HasPrefix(t, "ddb.virtualHWVersion"):
			out = append(out, `ddb.virtualHWVersion = "14"`)
			continue
		case strings.HasPrefix(t, "ddb.toolsVersion"):
			continue
		}
		out = append(out, line)
	}
	text = strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n"
	cid := descValue(text, "CID")
	text += fmt.Sprintf("ddb.longContentID = \"%s%s\"\n", strings.Repeat("0", 24), cid)
	text += fmt.Sprintf("ddb.uuid = %q\n", uuid16)
	return text
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
