#!/usr/bin/python3
"""Check what the lab's NFC server received against the table of messages
recorded of VDDK talking to real ESXi hosts (tests/lab/nfc_records.json,
each row citing its source in cloudbase/OpenVixDiskLib).

    nfc_conform.py LOG.json [--mode nbd|nbdssl] [--closed] [--need ROW]...
                   [--soap]

LOG.json is the lab's /lab/nfc/log.  Every message of every connection in
it is checked field by field (this file's own reading of the table, apart
from the lab's strict mode), with its opId and its place in the order:
the "connect" sequence first; with --closed, every connection ends with
the "close" sequence.  --mode: every connection is of that mode.  --need
ROW: at least one message of that row (e.g. aio.write, soap.ticket_vm).
--soap: the SOAP calls (RetrieveInternalContent, the NfcService ticket
calls) are checked too: each has a row, its namespace, every argument the
row lists and no other, hostForAccess the VM's host.  Prints one line per departure, then a
summary; exit 0 when there is none.
"""

import argparse
import json
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "lab", "nfc_records.json")


class Checker:
    def __init__(self, table):
        self.t = table
        self.src = table["sources"]
        self.msg = {r["type"]: r for r in table["msg"]}
        self.aio = table["aio"]
        self.rows = {r["id"]: r for k in ("authd", "msg", "aio", "soap") for r in table[k]}
        self.bad = []

    def cite(self, row):
        return row.get("source", "")

    def depart(self, where, row, what):
        rid = row["id"] if row else "?"
        self.bad.append("%s: %s: %s (records: %s)" % (where, rid, what, self.cite(row) if row else "no row"))

    # A field list against bytes B; CTX has handle and extra.
    def fields(self, where, row, b, ctx):
        covered = bytearray(len(b))
        binds = {}
        for f in row.get("fields", []):
            at = f["at"]
            if "bytes" in f:
                want = f["bytes"].encode()
                got = b[at:at + len(want)]
                if got != want:
                    self.depart(where, row, "[%d] is %r, not %r" % (at, got, want))
                for i in range(at, min(at + len(want), len(b))):
                    covered[i] = 1
                continue
            width, spec = (4, f["u32"]) if "u32" in f else (8, f["u64"])
            if at + width > len(b):
                self.depart(where, row, "payload of %d bytes has no [%d]" % (len(b), at))
                continue
            v = struct.unpack_from("<I" if width == 4 else "<Q", b, at)[0]
            for i in range(at, at + width):
                covered[i] = 1
            ok = True
            if spec == "*":
                pass
            elif isinstance(spec, list):
                ok = v in spec
            elif isinstance(spec, int):
                ok = v == spec
            elif spec == "@handle":
                ok = v in ctx["handles"]
            elif spec == "@extra":
                ok = v == ctx["extra_len"]
            elif spec.startswith("$"):
                ok = binds.setdefault(spec, v) == v
            if not ok:
                self.depart(where, row, "[%d] is %d, the records show %s" % (at, v, spec))
        for i, c in enumerate(b):
            if c and not covered[i]:
                self.depart(where, row, "byte [%d] is %#x where the records show 0" % (i, c))
                break

    def aio_row(self, m):
        for r in self.aio:
            if r["type"] != m["type"]:
                continue
            if "dir" in r:
                p = bytes.fromhex(m["payload"])
                if len(p) < 12 or struct.unpack_from("<I", p, 8)[0] != r["dir"]:
                    continue
            return r
        return None

    def connection(self, c, closed):
        where0 = "connection %s (%s)" % (c.get("id"), c.get("mode"))
        handles = set(int(h, 16) for h in c.get("handles") or [])
        seen = []
        want_op = 0
        open_write = None  # (opId, bytes still due)
        for i, m in enumerate(c["messages"]):
            where = "%s message %d" % (where0, i)
            k = m["kind"]
            row = None
            if k == "authd":
                for r in self.t["authd"]:
                    if re.search(r["line"], m["line"].replace("<ticket>", "t")):
                        row = r
                if not row:
                    self.depart(where, None, "authd line %r is not in the records" % m["line"])
            elif k == "msg":
                b = bytes.fromhex(m["hex"])
                row = self.msg.get(m["type"])
                if not row:
                    self.depart(where, None, "message type %d is not in the records" % m["type"])
                else:
                    if len(b) != 264:
                        self.depart(where, row, "%d bytes, not 264" % len(b))
                    # [0] is the type; the fields and the zeros after it.
                    self.fields(where, row, bytes(4) + b[4:], {})
                    if row.get("trailer", "") != (m.get("trailer") or ""):
                        self.depart(where, row, "trailer %r, the records show %r" % (m.get("trailer"), row.get("trailer")))
            elif k == "aio":
                row = self.aio_row(m)
                p = bytes.fromhex(m["payload"])
                if not row:
                    self.depart(where, None, "AIO message type %d is not in the records" % m["type"])
                else:
                    if m["size"] != row["size"] or len(p) != row["size"]:
                        self.depart(where, row, "payload of %d bytes, the records show %d" % (m["size"], row["size"]))
                    self.fields(where, row, p, {"handles": handles, "extra_len": m.get("extra_len", 0)})
                    if row.get("extra") is None and m.get("extra_len", 0):
                        self.depart(where, row, "%d bytes follow the payload; the records show none" % m["extra_len"])
                # opIds: from 0, one more per message; a write's fragments share one.
                op = m["op"]
                if open_write and op == open_write[0]:
                    open_write[1] -= m.get("extra_len", 0)
                else:
                    if open_write:
                        self.depart(where, row, "opId %d before write %d had all its fragments" % (op, open_write[0]))
                    if op != want_op:
                        self.depart(where, row, "opId %d, the next is %d (%s)" % (op, want_op, self.t["opids"]["source"]))
                    want_op = op + 1
                    open_write = None
                    if row and row["id"] == "aio.write" and len(p) >= 28:
                        total = struct.unpack_from("<I", p, 24)[0]
                        open_write = [op, total - m.get("extra_len", 0)]
                if open_write and open_write[1] <= 0:
                    open_write = None
            if m.get("departures"):
                # The lab saw something too: say it, it is one more failure.
                for d in m["departures"]:
                    self.bad.append("%s: the lab: %s" % (where, d))
            seen.append(row["id"] if row else "?")
        seq = self.t["sequences"]
        con = seq["connect"]
        if seen[:len(con)] != con:
            self.bad.append("%s: begins %s; the records show %s (%s)" % (where0, seen[:len(con)], con, seq["source"]))
        if closed and seen[-len(seq["close"]):] != seq["close"]:
            self.bad.append("%s: ends %s; the records show %s (%s)" % (where0, seen[-3:], seq["close"], seq["source"]))
        return seen

    def soap(self, s):
        row = None
        for r in self.t["soap"]:
            if r["method"] == s["method"]:
                row = r
        where = "SOAP %s" % s["method"]
        for d in s.get("departures") or []:
            self.bad.append("%s: the lab: %s" % (where, d))
        if not row:
            self.depart(where, None, "the SOAP method %s is not in the records" % s["method"])
            return "?"
        if s.get("ns") != row["ns"]:
            self.depart(where, row, "namespace %s, the records show %s" % (s.get("ns"), row["ns"]))
        args = s.get("args") or []
        for a in row["args"]:
            if a not in args:
                self.depart(where, row, "no %s argument" % a)
        for a in args:
            if a not in row["args"]:
                self.depart(where, row, "a %s argument, which the records do not show (they show %s)"
                            % (a, ", ".join(row["args"]) or "none"))
        if "hostForAccess" in row["args"] and s.get("host_for_access") != s.get("vm_host"):
            self.depart(where, row, "hostForAccess %s, the VM runs on %s" % (s.get("host_for_access"), s.get("vm_host")))
        return row["id"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--mode")
    ap.add_argument("--closed", action="store_true")
    ap.add_argument("--need", action="append", default=[])
    ap.add_argument("--soap", action="store_true")
    a = ap.parse_args()
    with open(TABLE) as f:
        ck = Checker(json.load(f))
    with open(a.log) as f:
        log = json.load(f)
    counts = {}
    conns = log.get("connections") or []
    if not conns:
        ck.bad.append("the log has no connection")
    for c in conns:
        if a.mode and c.get("mode") != a.mode:
            ck.bad.append("connection %s is %s, not %s" % (c.get("id"), c.get("mode"), a.mode))
        for rid in ck.connection(c, a.closed):
            counts[rid] = counts.get(rid, 0) + 1
    if a.soap:
        calls = log.get("soap") or []
        if not calls:
            ck.bad.append("the log has no SOAP ticket call")
        for s in calls:
            rid = ck.soap(s)
            counts[rid] = counts.get(rid, 0) + 1
    for rid in a.need:
        if not counts.get(rid):
            ck.bad.append("no message of row %s" % rid)
    for b in ck.bad:
        print("DEPARTS: " + b)
    print("conformance: %d connections, %s; %d departures" % (
        len(conns), ", ".join("%s x%d" % kv for kv in sorted(counts.items())), len(ck.bad)))
    return 1 if ck.bad else 0


if __name__ == "__main__":
    sys.exit(main())
