#!/usr/bin/python3
"""A small NFC client for the lab's smoke test (stdlib only).

It speaks as VDDK was recorded speaking to real hosts (the lab's
nfc_records.json, from cloudbase/OpenVixDiskLib's docs/nfc_auth.md,
nfc_open.md, nfc_read.md, nfc_write.md), so that the lab's strict mode
takes it.  SOAP: Login, RetrieveInternalContent in urn:vim25, the VM's
runtime.host (RetrievePropertiesEx), then NfcRandomAccessOpenReadonly /
NfcRandomAccessOpenDisk in urn:vim25 with vm, diskDeviceKey and
hostForAccess, or (--method NfcGetVmFiles, VDDK's read-only open) NfcGetVmFiles
in urn:vim25 with vm alone.  authd:
greeting, TLS, SESSION, BANNER, THUMBPRINT_SHA2 PlainText, PROXY.  Then
NFC in clear (nbd) or in a second TLS session (nbdssl): 43 PlainText, 33,
wait for 36, 51 (11), wait for 51, 54 (4, 7) + "vddknbdmode", 55 (3),
52, wait for 52; AIO opIds from 0: OPEN_SESSION (16 bytes, [4] the buffer
size, [8] 4), SET_SOCK_OPTS (12 zeros), SET_RES_POOL (1), OPEN_FILE of a
datastore path, reads of the whole disk with several requests in flight
(fragments placed by their offsets; the length at [24], [32], [36]; with
--compress fastlz, 2 at [12], and the fragments answered with FastLZ, 2 at
[12] of the reply, decompressed),
optional writes (one opId, fragments of at most the buffer size, one
acknowledgement and no data after it), CLOSE_FILE (8 bytes),
CLOSE_SESSION (4), the 264-byte type 4.  It checks the certificate
against the ticket's SHA-1 thumbprint, the THUMBPRINT_SHA2 answer and
that the second TLS session shows the same certificate.

    nfc_client.py --env LAB.ENV --vm MOREF --disk KEY --path '[ds] f.vmdk'
                  [--ssl] [--out FILE] [--req BYTES] [--inflight N]
                  [--rw] [--write OFFSET:LENGTH:BYTE] [--method NAME]
                  [--expect-error CODE[:TEXT]] [--expect-open-error CODE]
                  [--bufsize BYTES] [--no-read] [--wait SECONDS] [--reuse-ticket]
                  [--compress fastlz] [--depart read32|zlib] [--probe LINE]

--compress fastlz: the reads ask for FastLZ (nfc_read.md: "Reads with
FASTLZ always *request* type 2"); the JSON line counts the fragments that
came compressed (fastlz_fragments) and raw (raw_fragments).  --depart
read32: the first read request has 0 at [32] (the records have the length
there); --depart zlib: it asks for zlib (1 at [12]; the records have 0 or
2): departures the lab's strict mode refuses.  --probe
LINE: after TLS, send LINE to authd instead of the session, print its
answer ("probe") and stop.

Prints one JSON line; exit 0 when everything expected happened, else 1.
"""

import argparse
import hashlib
import http.client
import json
import os
import shlex
import socket
import ssl
import struct
import sys
import time
import xml.etree.ElementTree as ET

MAGIC = 0xA100DA7A
ERROR, OPEN_SESSION, CLOSE_SESSION, OPEN_FILE, CLOSE_FILE, IO = 1, 2, 3, 4, 5, 7
SET_SOCK_OPTS, SET_RES_POOL = 9, 22


class Fail(Exception):
    pass


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = shlex.split(v)[0] if v else ""
    return env


def colon_hex(b):
    return ":".join("%02X" % c for c in b)


# ---- SOAP ----

class Soap:
    def __init__(self, env):
        self.host, self.port = env["LAB_HOST"], int(env["LAB_PORT"])
        self.ctx = ssl.create_default_context(cafile=env["LAB_CERT"])
        self.cookie = None

    def call(self, method, this_type, this, inner="", ns="urn:vim25"):
        body = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
                '<soapenv:Body><%s xmlns="%s"><_this type="%s">%s</_this>%s</%s>'
                '</soapenv:Body></soapenv:Envelope>'
                % (method, ns, this_type, this, inner, method))
        c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
        h = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"%s/7.0"' % ns}
        if self.cookie:
            h["Cookie"] = self.cookie
        c.request("POST", "/sdk", body.encode(), h)
        r = c.getresponse()
        data = r.read()
        sc = r.getheader("Set-Cookie")
        if sc:
            self.cookie = sc.split(";")[0]
        root = ET.fromstring(data)
        fault = root.find(".//{http://schemas.xmlsoap.org/soap/envelope/}Fault")
        if fault is not None:
            raise Fail("%s: SOAP fault: %s" % (method, fault.findtext("faultstring")))
        return root


def text(root, name):
    for e in root.iter():
        if e.tag.split("}")[-1] == name:
            return e.text or ""
    return None


def get_ticket(env, vm, disk, rw, method):
    s = Soap(env)
    sc = s.call("RetrieveServiceContent", "ServiceInstance", "ServiceInstance")
    esc = lambda x: x.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s.call("Login", "SessionManager", text(sc, "sessionManager"),
           "<userName>%s</userName><password>%s</password>"
           % (esc(env["LAB_USER"]), esc(env["LAB_PASSWORD"])))
    ic = s.call("RetrieveInternalContent", "ServiceInstance", "ServiceInstance")
    svc = text(ic, "nfcService")
    # hostForAccess: the host the VM runs on (OpenVixDiskLib nfc_auth.py,
    # get_nfc_ticket: vm.runtime.host).
    props = s.call("RetrievePropertiesEx", "PropertyCollector", text(sc, "propertyCollector"),
                   "<specSet><propSet><type>VirtualMachine</type><pathSet>runtime.host</pathSet></propSet>"
                   '<objectSet><obj type="VirtualMachine">%s</obj></objectSet></specSet><options/>' % vm)
    host = text(props, "val")
    if not host:
        raise Fail("RetrievePropertiesEx: no runtime.host for %s" % vm)
    if not method:
        method = "NfcRandomAccessOpenDisk" if rw else "NfcRandomAccessOpenReadonly"
    inner = '<vm type="VirtualMachine">%s</vm>' % vm
    if method != "NfcGetVmFiles":
        inner += ('<diskDeviceKey>%d</diskDeviceKey><hostForAccess type="HostSystem">%s</hostForAccess>'
                  % (disk, host))
    r = s.call(method, "NfcService", svc, inner)
    rv = [e for e in r.iter() if e.tag.split("}")[-1] == "returnval"][0]
    t = {e.tag.split("}")[-1]: e.text for e in rv}
    t["nfcService"] = svc
    s.call("Logout", "SessionManager", text(sc, "sessionManager"))
    return t


# ---- authd ----

def recv_line(sock):
    b = b""
    while not b.endswith(b"\n"):
        c = sock.recv(1)
        if not c:
            raise Fail("authd closed the link (after %r)" % b)
        b += c
    return b.decode().rstrip("\r\n")


def authd(env, t, use_ssl, probe=None):
    host = t.get("host") or env["LAB_HOST"]
    sock = socket.create_connection((host, int(t["port"])), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    greeting = recv_line(sock)
    if not greeting.startswith("220 ") or "SHA256 supported" not in greeting or "NFCSSL supported" not in greeting:
        raise Fail("greeting %r" % greeting)
    ctx = ssl.create_default_context(cafile=env["LAB_NFC_CERT"])
    first = ctx.wrap_socket(sock, server_hostname=host)
    der = first.getpeercert(binary_form=True)
    if colon_hex(hashlib.sha1(der).digest()) != t["sslThumbprint"].upper():
        raise Fail("the certificate's SHA-1 is not the ticket's thumbprint")
    sha256 = colon_hex(hashlib.sha256(der).digest())
    if probe is not None:
        first.sendall((probe + "\r\n").encode())
        try:
            return recv_line(first)
        except Fail as e:
            return "(%s)" % e
    first.sendall(("SESSION %s\r\n" % t["sessionId"]).encode())
    first.sendall(b"BANNER \r\n")
    banner = recv_line(first)
    if not banner.startswith("220 "):
        raise Fail("BANNER: %r" % banner)
    first.sendall(b"THUMBPRINT_SHA2 PlainText\r\n")
    line = recv_line(first)
    if line != "200 " + sha256:
        raise Fail("THUMBPRINT_SHA2: %r, the certificate's is %s" % (line, sha256))
    service = t["service"] + ("ssl" if use_ssl else "")
    first.sendall(("PROXY %s\r\n" % service).encode())
    line = recv_line(first)
    want = "200 Connect ha-nfcssl" if use_ssl else "200 Connect ha-nfc"
    if line != want:
        raise Fail("PROXY %s: %r" % (service, line))
    # The first TLS session is abandoned: the raw socket goes on (no unwrap,
    # no close_notify).
    raw = socket.socket(sock.family, sock.type, sock.proto, fileno=os.dup(first.fileno()))
    raw.settimeout(30)
    first.close()
    if not use_ssl:
        return raw
    second = ctx.wrap_socket(raw, server_hostname=host)
    if second.getpeercert(binary_form=True) != der:
        raise Fail("the second TLS session shows another certificate")
    return second


# ---- NFC ----

def recvn(sock, n):
    b = bytearray()
    while len(b) < n:
        c = sock.recv(n - len(b))
        if not c:
            raise Fail("NFC link closed (wanted %d bytes, got %d)" % (n, len(b)))
        b += c
    return bytes(b)


def msg(typ, a4=0, a8=0):
    return struct.pack("<III", typ, a4, a8).ljust(264, b"\0")


def expect_msg(sock, want):
    typ = struct.unpack_from("<I", recvn(sock, 264))[0]
    if typ != want:
        raise Fail("handshake: got message %d, wanted %d" % (typ, want))


def handshake(sock):
    """The order recorded (nfc_open.md, "Handshake order")."""
    sock.sendall(struct.pack("<I", 43) + b"PlainText".ljust(260, b"\0"))
    sock.sendall(msg(33))
    expect_msg(sock, 36)
    sock.sendall(msg(51, 11))
    expect_msg(sock, 51)
    sock.sendall(msg(54, 4, 7) + b"vddk" + b"nbdmode")
    sock.sendall(msg(55, 3))
    sock.sendall(msg(52))
    expect_msg(sock, 52)


class Aio:
    def __init__(self, sock):
        self.sock, self.op = sock, 0  # opIds from 0 on each connection

    def send(self, typ, payload, extra=b"", op=None):
        if op is None:
            op = self.op
            self.op += 1
        self.sock.sendall(struct.pack("<IIII", MAGIC, typ, len(payload), op) + payload + extra)
        return op

    def recv(self):
        """(type, opId, payload, extra); the extras of ERROR records and
        read replies read.  A write's acknowledgement carries no data,
        whatever its [36] says (nfc_write.md: one 44-byte reply)."""
        magic, typ, size, op = struct.unpack("<IIII", recvn(self.sock, 16))
        if magic != MAGIC:
            raise Fail("bad magic %#x" % magic)
        p = recvn(self.sock, size)
        extra = b""
        if typ == ERROR:
            extra = recvn(self.sock, struct.unpack_from("<I", p, 12)[0])
        elif typ == IO and len(p) >= 40 and struct.unpack_from("<I", p, 8)[0] == 1:
            extra = recvn(self.sock, struct.unpack_from("<I", p, 36)[0])
        return typ, op, p, extra

    def call(self, typ, payload, extra=b""):
        op = self.send(typ, payload, extra)
        rtyp, rop, p, x = self.recv()
        if rtyp == ERROR:
            code = struct.unpack_from("<Q", p)[0]
            text = x.decode(errors="replace")
            if not text.startswith("vmdkfs-lab strict:"):
                self.recv()  # the lab's reply follows its ERROR record (strict refusals have none)
            raise NfcError(code, text)
        if (rtyp, rop) != (typ, op):
            raise Fail("reply type %d op %d to type %d op %d" % (rtyp, rop, typ, op))
        return p


class NfcError(Exception):
    def __init__(self, code, text):
        super().__init__("NFC error %d: %s" % (code, text))
        self.code, self.text = code, text


FASTLZ, ZLIB = 2, 1  # compression types, the high 32 bits of the u64 at [8]


def fastlz_decompress(b, size):
    """A FastLZ block (levels 1 and 2, the level in the top 3 bits of its
    first byte) decompressed to exactly size bytes, else Fail."""
    if not b or b[0] >> 5 not in (0, 1):
        raise Fail("FastLZ block of level %s" % (b[0] >> 5 if b else "(empty)"))
    level = 1 + (b[0] >> 5)
    out = bytearray()
    i, ctrl = 1, b[0] & 31
    try:
        while True:
            if ctrl < 32:  # a literal run of ctrl + 1 bytes
                if i + ctrl + 1 > len(b):
                    raise Fail("FastLZ literal run past the block's end")
                out += b[i:i + ctrl + 1]
                i += ctrl + 1
            else:  # a match
                n = (ctrl >> 5) + 2
                if n == 9:
                    if level == 1:
                        n += b[i]
                        i += 1
                    else:
                        while True:
                            n += b[i]
                            i += 1
                            if b[i - 1] != 255:
                                break
                code = b[i]
                i += 1
                dist = ((ctrl & 31) << 8) + code + 1
                if level == 2 and code == 255 and ctrl & 31 == 31:
                    dist = (b[i] << 8) + b[i + 1] + 8191 + 1
                    i += 2
                if dist > len(out):
                    raise Fail("FastLZ match %d bytes back, %d decoded" % (dist, len(out)))
                # It may overlap what it makes: the last dist bytes repeated.
                start = len(out) - dist
                out += (out[start:start + n] if n <= dist else bytes(out[start:]) * (n // dist + 1))[:n]
            if len(out) > size:
                raise Fail("FastLZ block decodes past %d bytes" % size)
            if i >= len(b):
                break
            ctrl = b[i]
            i += 1
    except IndexError:
        raise Fail("FastLZ match past the block's end")
    if len(out) != size:
        raise Fail("FastLZ block of %d bytes decodes to %d, not %d" % (len(b), len(out), size))
    return bytes(out)


def read_all(aio, handle, capacity, req, inflight, out, depart=None, compress=0):
    """Read the whole disk, req bytes per request, inflight in flight,
    asking for compression compress (0 or FASTLZ) (depart "read32": the
    first request has 0 at [32]; "zlib": it asks for ZLIB)."""
    data = bytearray(capacity)
    pending = {}  # op -> [offset, length, bytes received, next expected fragment offset]
    nxt = 0
    frags = ooo = packed = 0
    errors = []
    last_op = None
    while nxt < capacity or pending:
        while nxt < capacity and len(pending) < inflight:
            n = min(req, capacity - nxt)
            comp = ZLIB if depart == "zlib" else compress
            p = struct.pack("<QQQQIII", handle, 1 | comp << 32, nxt, n, 0 if depart == "read32" else n, n, 0)
            depart = None
            pending[aio.send(IO, p)] = [nxt, n, 0, 0]
            nxt += n
        typ, op, p, extra = aio.recv()
        if op not in pending:
            raise Fail("reply to no request in flight (op %d, type %d)" % (op, typ))
        r = pending[op]
        if typ == ERROR:
            errors.append({"op": op, "offset": r[0], "code": struct.unpack_from("<Q", p)[0],
                           "text": extra.decode(errors="replace")})
            del pending[op]
            continue
        status, dc, roff, total, fo, fl, wl = struct.unpack_from("<QQQIIII", p)
        # Compression 2 (FastLZ) only if asked for, and then shorter than
        # the data (nfc_read.md: "FASTLZ, data that shrinks"); else 0 and
        # the data as it is.
        ctype = dc >> 32
        if (typ != IO or status != 0 or dc & 0xFFFFFFFF != 1 or roff != r[0] or total != r[1] or fo + fl > total
                or (ctype == 0 and wl != fl) or (ctype == FASTLZ and not (0 < wl < fl and compress == FASTLZ))
                or ctype not in (0, FASTLZ)):
            raise Fail("bad read fragment %r" % ((typ, status, dc, roff, total, fo, fl, wl),))
        if ctype == FASTLZ:
            extra = fastlz_decompress(extra, fl)
            packed += 1
        frags += 1
        if fo != r[3] or (last_op is not None and op != last_op and r[2] != 0):
            ooo += 1
        last_op = op
        r[3] = fo + fl
        data[roff + fo:roff + fo + fl] = extra
        r[2] += fl
        if r[2] == r[1]:
            del pending[op]
    if out:
        with open(out, "wb") as f:
            f.write(data)
    return frags, ooo, errors, packed


def write(aio, handle, off, length, byte, bufsize):
    """One IO write in fragments of at most bufsize; one acknowledgement."""
    data = bytes([byte]) * length
    op = None
    for fo in range(0, length, bufsize):
        chunk = data[fo:fo + bufsize]
        p = struct.pack("<QQQIIIII", handle, 0, off, length, fo, len(chunk), len(chunk), 0)
        op = aio.send(IO, p, chunk, op=op)
    typ, rop, p, extra = aio.recv()  # never data after it, whatever [36] says
    if typ == ERROR:
        raise NfcError(struct.unpack_from("<Q", p)[0], extra.decode(errors="replace"))
    status, _, roff, total, _, chunk = struct.unpack_from("<QQQIII", p)
    if (typ, rop, status, total, chunk) != (IO, op, 0, length, length):
        raise Fail("bad write acknowledgement %r" % ((typ, rop, status, roff, total, chunk),))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", required=True)
    ap.add_argument("--vm", required=True)
    ap.add_argument("--disk", type=int, default=2000)
    ap.add_argument("--path", required=True)
    ap.add_argument("--ssl", action="store_true")
    ap.add_argument("--rw", action="store_true")
    ap.add_argument("--method")
    ap.add_argument("--out")
    ap.add_argument("--req", type=int, default=1 << 20)
    ap.add_argument("--inflight", type=int, default=4)
    ap.add_argument("--bufsize", type=int, default=0)
    ap.add_argument("--write", action="append", default=[])
    ap.add_argument("--no-read", action="store_true")
    ap.add_argument("--expect-error")
    ap.add_argument("--expect-open-error", type=int)
    ap.add_argument("--wait", type=float, default=0, help="seconds between the ticket and authd")
    ap.add_argument("--reuse-ticket", action="store_true",
                    help="afterwards, present the ticket again: PROXY must be refused")
    ap.add_argument("--depart", choices=["read32", "zlib"])
    ap.add_argument("--compress", choices=["fastlz"], help="the reads ask for FastLZ")
    ap.add_argument("--probe", help="send this line to authd after TLS, print the answer, stop")
    a = ap.parse_args()
    env = load_env(a.env)
    res = {"mode": "nbdssl" if a.ssl else "nbd"}
    try:
        t = get_ticket(env, a.vm, a.disk, a.rw, a.method)
        res["ticket"] = {k: v for k, v in t.items() if k != "sessionId"}
        if a.wait:
            time.sleep(a.wait)
        if a.probe is not None:
            res["probe"] = authd(env, t, a.ssl, probe=a.probe)
            print(json.dumps(res))
            return 0
        sock = authd(env, t, a.ssl)
        handshake(sock)
        aio = Aio(sock)
        bufsize = a.bufsize or 65536  # VDDK's default (nfc_open.md)
        aio.call(OPEN_SESSION, struct.pack("<IIII", 0, bufsize, 4, 0))
        res["sock_opts"] = list(struct.unpack("<III", aio.call(SET_SOCK_OPTS, bytes(12))))
        aio.call(SET_RES_POOL, struct.pack("<I", 1))
        path = a.path.encode()
        try:
            p = aio.call(OPEN_FILE, struct.pack("<I12xII36x", len(path), 2, 0x1A if a.rw else 0x1E), path)
        except NfcError as e:
            res["open_error"] = {"code": e.code, "text": e.text}
            if a.expect_open_error is not None and e.code == a.expect_open_error:
                print(json.dumps(res))
                return 0
            raise
        if a.expect_open_error is not None:
            raise Fail("OPEN_FILE succeeded, expected error %d" % a.expect_open_error)
        status, handle, ftype, flags, _, capacity, sector = struct.unpack_from("<QQIIIQI", p)
        res.update(handle="%#x" % handle, capacity=capacity, sector_size=sector, flags=flags)
        if status != 0 or ftype != 2 or sector != 512 or capacity <= 0:
            raise Fail("OPEN_FILE reply %r" % ((status, ftype, sector, capacity),))
        for w in a.write:
            off, length, byte = (int(x, 0) for x in w.split(":"))
            write(aio, handle, off, length, byte, bufsize)
        if not a.no_read:
            frags, ooo, errors, packed = read_all(aio, handle, capacity, a.req, a.inflight, a.out, a.depart,
                                                  FASTLZ if a.compress else 0)
            res.update(fragments=frags, out_of_order=ooo, errors=errors)
            if a.compress:
                res.update(fastlz_fragments=packed, raw_fragments=frags - packed)
            if a.expect_error:
                code, _, want = a.expect_error.partition(":")
                if len(errors) != 1 or errors[0]["code"] != int(code, 0) or (want and errors[0]["text"] != want):
                    raise Fail("expected one error %s, got %r" % (a.expect_error, errors))
            elif errors:
                raise Fail("errors: %r" % errors)
        aio.call(CLOSE_FILE, struct.pack("<Q", handle))
        aio.call(CLOSE_SESSION, struct.pack("<I", 0))
        sock.sendall(msg(4))
        sock.close()
        if a.reuse_ticket:
            try:
                authd(env, t, a.ssl)
            except Fail as e:
                res["reuse"] = str(e)
                if "'500 " not in str(e):
                    raise
            else:
                raise Fail("a used ticket was accepted again")
    except (Fail, NfcError, OSError, ssl.SSLError, KeyError, ET.ParseError) as e:
        res["fail"] = str(e)
        print(json.dumps(res))
        return 1
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
