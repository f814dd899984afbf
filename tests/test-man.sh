#!/bin/bash
# The man page, vmdkfs.1: it documents every key "vmdkfs --help" lists and
# no other (a .TP entry each, the key in bold), with the default --help
# gives; its SYNOPSIS has every usage form of --help; groff has nothing to
# warn about; lines are short and option hyphens escaped; make install
# puts it in share/man/man1 and man renders the installed copy.  Each
# check is also run on a broken copy of the page, to show it can fail.
. "$(dirname "$0")/lib.sh"
need groff man make
[ -x /usr/bin/python3 ] || skip "python3 is not installed"
PAGE=$TOP/vmdkfs.1
[ -f "$PAGE" ] || fail "$PAGE is missing"
[ -x "$VMDKFS" ] || fail "$VMDKFS is missing (run make first)"
export LC_ALL=C.UTF-8
cd "$WORK"
"$VMDKFS" --help >help.txt || fail "vmdkfs --help failed"

# man.py: reads the page's troff source (and help.txt); see its commands.
cat >man.py <<'EOF'
import re, subprocess, sys

SECTION = "MOUNT OPTIONS AND CONFIGURATION KEYS"
ALT = {"BI", "BR", "IB", "IR", "RB", "RI"}  # fonts alternate, no spaces
ONE = {"B", "I", "SB", "SM"}                 # arguments joined by spaces
CHARS = {"lq": '"', "rq": '"', "dq": '"', "oq": "'", "cq": "'", "aq": "'",
         "em": "--", "en": "-", "hy": "-", "mi": "-", "bu": "*", "ti": "~",
         "rs": "\\"}
ESC = re.compile(r"\\(f(?:\[[^]]*\]|\(..|.)|\((..)|\[([^]]*)\]|.)")


def plain(s):
    """Troff text without its escapes: fonts dropped, \\- as -."""
    def one(m):
        t = m.group(1)
        if t[0] == "f":
            return ""
        if t[0] == "(" and m.group(2):
            return CHARS.get(m.group(2), "?")
        if t[0] == "[" and m.group(3) is not None:
            return CHARS.get(m.group(3), "?")
        return {"-": "-", "e": "\\", " ": " ", "~": " ", "\\": "\\",
                ".": ".", "'": "'"}.get(t, "")
    return ESC.sub(one, s)


def args(s):
    """A macro line's arguments, as troff splits them (quotes, "")."""
    out, i, n = [], 0, len(s)
    while i < n:
        while i < n and s[i] in " \t":
            i += 1
        if i >= n:
            break
        quoted = s[i] == '"'
        i += quoted
        a = ""
        while i < n:
            c = s[i]
            if c == "\\" and i + 1 < n:
                a += s[i:i + 2]
                i += 2
                continue
            if quoted and c == '"':
                if s[i + 1:i + 2] == '"':
                    a += '"'
                    i += 2
                    continue
                i += 1
                break
            if not quoted and c in " \t":
                break
            a += c
            i += 1
        out.append(a)
    return out


def line_text(line):
    """(macro or None, plain text or None) of one source line."""
    line = re.sub(r'\\".*', "", line)
    if line[:1] in (".", "'"):
        parts = line[1:].strip().split(None, 1)
        if not parts:
            return "", None
        mac, rest = parts[0], parts[1] if len(parts) > 1 else ""
        if mac in ALT:
            return mac, plain("".join(args(rest)))
        if mac in ONE:
            return mac, plain(" ".join(args(rest)))
        return mac, " ".join(plain(a) for a in args(rest))
    return None, plain(line)


def entries(page):
    """The .TP entries of the keys section: dicts of key, tag, bold,
    body (plain text), line (of the tag), start and end (source lines
    [start, end) of the entry)."""
    lines = open(page, encoding="utf-8").read().split("\n")
    out, cur, want_tag, insec, tp = [], None, False, False, 0
    for i, ln in enumerate(lines):
        mac, text = line_text(ln)
        if mac in ("SH", "SS", "PP", "LP", "P", "IP", "HP", "TP", "TQ"):
            if cur is not None:
                cur["end"] = i
                cur = None
            want_tag = False
        if mac == "SH":
            insec = text.strip() == SECTION
            continue
        if not insec:
            continue
        if mac in ("TP", "TQ"):
            want_tag, tp = True, i
            continue
        if want_tag:
            if mac == "" or (mac is not None and mac not in ALT | ONE):
                continue  # a comment or a request before the tag
            want_tag = False
            m = re.match(r"[A-Za-z_][A-Za-z0-9_.]*", text)
            cur = {"key": m.group(0) if m else "", "tag": text.strip(),
                   "bold": mac in ("B", "BI", "BR", "SB") or
                   (mac is None and ln.startswith("\\fB")),
                   "body": "", "line": i + 1, "start": tp, "end": len(lines)}
            out.append(cur)
            continue
        if cur is not None and text:
            cur["body"] += " " + text
    return out


def help_keys(help_txt):
    """[(key, default or None)] of the lines under "mount options" of
    --help that name a key: "  key=default" or "  key", or "  key=ARG
    text" (no default then)."""
    keys, on = [], False
    for ln in open(help_txt, encoding="utf-8"):
        ln = ln.rstrip("\n")
        if ln.startswith("mount options"):
            on = True
            continue
        m = on and re.match(r"^  ([A-Za-z][A-Za-z0-9_.]*)(=(\S*))?(  +\S.*)?$",
                            ln)
        if m:
            keys.append((m.group(1),
                         m.group(3) if m.group(2) and not m.group(4)
                         else None))
    return keys


def check_keys(page, help_txt):
    """Both directions: each key of --help has an entry, each entry is a
    key of --help; each tag starts with its key, in bold; no key twice."""
    problems = []
    hk = [k for k, _ in help_keys(help_txt)]
    if len(hk) < 10:
        problems.append("found only %d keys in vmdkfs --help: %s"
                        % (len(hk), " ".join(hk)))
    es = entries(page)
    if not es:
        problems.append('the man page has no .TP entries in "%s"' % SECTION)
    mk = []
    for e in es:
        if not e["key"]:
            problems.append('man page line %d: the tag "%s" names no key'
                            % (e["line"], e["tag"]))
            continue
        if not e["bold"]:
            problems.append('man page line %d: the tag of %s is not bold'
                            % (e["line"], e["key"]))
        if e["key"] in mk:
            problems.append("man page line %d: %s is documented twice"
                            % (e["line"], e["key"]))
        mk.append(e["key"])
    missing = [k for k in hk if k not in mk]
    extra = [k for k in mk if k not in hk]
    if missing:
        problems.append("in vmdkfs --help but not in the man page: "
                        + " ".join(missing))
    if extra:
        problems.append("in the man page but not in vmdkfs --help: "
                        + " ".join(extra))
    return problems


def check_defaults(page, help_txt):
    """Each key with a default in --help says "Default: VALUE" (the
    sentence after "Default:" holds VALUE as a word)."""
    problems = []
    by_key = {e["key"]: e for e in entries(page)}
    for k, d in help_keys(help_txt):
        if not d or k not in by_key:
            continue
        body = by_key[k]["body"]
        at = body.find("Default:")
        if at < 0:
            problems.append('%s: its entry has no "Default:" (--help: %s)'
                            % (k, d))
            continue
        said = re.split(r"\.(?:\s|$)", body[at + 8:], 1)[0].strip()
        if not re.search(r"(?<![\w./$-])" + re.escape(d) + r"(?![\w/])",
                         said):
            problems.append('%s: --help gives the default %s, the man page '
                            '"Default: %s"' % (k, d, said))
    return problems


def synopsis(page):
    """The SYNOPSIS as rendered, one usage form a line, blanks squeezed."""
    out = subprocess.run(["groff", "-man", "-Tutf8", "-P-cbou",
                          "-rLL=300n", page], capture_output=True,
                         text=True, check=True).stdout
    forms, cur, on = [], [], False
    for ln in out.split("\n"):
        if ln.strip() == "SYNOPSIS" and not ln.startswith(" "):
            on = True
            continue
        if on and ln and not ln.startswith(" "):
            break
        if not on:
            continue
        if ln.strip():
            cur.append(ln.strip())
        elif cur:
            forms.append(" ".join(" ".join(cur).split()))
            cur = []
    if cur:
        forms.append(" ".join(" ".join(cur).split()))
    return forms


def usage(help_txt):
    """The usage forms of --help ("a | b" lines split: vmdkfs b)."""
    forms, on = [], False
    for ln in open(help_txt, encoding="utf-8"):
        if ln.startswith("usage:"):
            on = True
            ln = ln[len("usage:"):]
        elif on and not ln.strip():
            break
        if not on:
            continue
        alts = " ".join(ln.split()).split(" | ")
        forms.append(alts[0])
        forms += ["vmdkfs " + a for a in alts[1:]]
    return forms


def check_synopsis(page, help_txt):
    problems = []
    forms = usage(help_txt)
    if len(forms) < 5:
        problems.append("found only %d usage forms in vmdkfs --help"
                        % len(forms))
    have = synopsis(page)
    for f in forms:
        if f not in have:
            problems.append('the SYNOPSIS lacks "%s" (it has: %s)'
                            % (f, "; ".join(have)))
    return problems


def lint(page):
    """Short source lines; option-like hyphens written \\-; .TH's
    version is vmdkfs --version's (given as the third argument)."""
    problems = []
    text = open(page, encoding="utf-8").read().split("\n")
    for i, ln in enumerate(text, 1):
        if len(ln) > 80:
            problems.append("line %d is %d characters long" % (i, len(ln)))
        if ln.startswith('.\\"'):
            continue
        if re.search(r'(^|[\s\[(|"])-', ln):
            problems.append("line %d: a hyphen not written \\- : %s"
                            % (i, ln))
    th = [ln for ln in text if ln.startswith(".TH ")]
    if len(th) != 1 or len(args(th[0][4:])) < 4:
        problems.append("no .TH line with a version")
    elif plain(args(th[0][4:])[3]) != sys.argv[3]:
        problems.append('.TH says "%s", vmdkfs --version "%s"'
                        % (plain(args(th[0][4:])[3]), sys.argv[3]))
    return problems


def broken(page, how, what, out):
    """Write a copy of PAGE broken in one way, for the checks to catch."""
    lines = open(page, encoding="utf-8").read().split("\n")
    es = {e["key"]: e for e in entries(page)}
    if how == "drop-entry":           # the .TP entry of key WHAT
        e = es[what]
        del lines[e["start"]:e["end"]]
    elif how == "add-entry":          # an entry for a key that is not
        first = min(e["start"] for e in es.values())
        lines[first:first] = [".TP", ".BI %s= n" % what, "Not a key.",
                              "Default:", ".BR 0 ."]
    elif how == "change-default":     # key WHAT's default, 9 appended
        e = es[what]
        d = dict(help_keys("help.txt"))[what]
        for i in range(e["start"], e["end"]):
            if "Default:" in lines[i]:
                break
        for j in range(i, e["end"]):
            if d in lines[j]:
                lines[j] = lines[j].replace(d, d + "9", 1)
                break
    elif how == "drop-synopsis":      # the .SY block holding ".B WHAT"
        i = lines.index(".B " + what)
        s = max(j for j in range(i) if lines[j].startswith(".SY"))
        e = min(j for j in range(i, len(lines)) if lines[j] == ".YS")
        del lines[s:e + 1]
    elif how == "unescaped":          # an option hyphen as a plain "-"
        i = lines.index(".B \\-f")
        lines[i] = ".B -f"
    elif how == "bad-macro":          # a macro groff does not know
        lines.insert(lines.index(".SH DESCRIPTION") + 1, ".XYZZY text")
    open(out, "w", encoding="utf-8").write("\n".join(lines))


cmd = sys.argv[1]
if cmd == "keys":
    for e in entries(sys.argv[2]):
        print(e["key"])
elif cmd == "help-keys":
    for k, d in help_keys(sys.argv[2]):
        print(k if d is None else k + "=" + d)
elif cmd == "broken":
    broken(*sys.argv[2:6])
else:
    check = {"check-keys": check_keys, "check-defaults": check_defaults,
             "check-synopsis": check_synopsis}.get(cmd)
    p = lint(sys.argv[2]) if cmd == "lint" else check(sys.argv[2], "help.txt")
    for x in p:
        print(x)
    sys.exit(1 if p else 0)
EOF
man_py() { /usr/bin/python3 "$WORK/man.py" "$@"; }

# groff_warnings PAGE: what groff warns about (nothing, for a good page).
groff_warnings() { groff -man -Tutf8 -ww -z "$1" 2>&1; }

VERSION=$("$VMDKFS" --version)
check_page() { # PAGE: every check; prints the problems, 1 if any
	local rc=0 w
	man_py check-keys "$1" || rc=1
	man_py check-defaults "$1" || rc=1
	man_py check-synopsis "$1" || rc=1
	man_py lint "$1" "$VERSION" || rc=1
	w=$(groff_warnings "$1")
	[ -z "$w" ] || { echo "groff warns: $w"; rc=1; }
	return $rc
}

# The page as it is.
if ! out=$(check_page "$PAGE"); then
	printf '%s\n' "$out"
	fail "the man page does not match vmdkfs --help (see above)"
fi
nkeys=$(man_py help-keys help.txt | wc -l)
echo "ok man page: $nkeys keys of --help, each with its entry and default; synopsis; no groff warnings"

# Rendered by man (as a user reads it), 80 columns: no line runs over.
MANWIDTH=80 man -l "$PAGE" >page.txt 2>man.err || fail "man -l: $(cat man.err)"
[ ! -s man.err ] || fail "man -l $PAGE complains: $(cat man.err)"
long=$(/usr/bin/python3 -c 'import sys
for ln in open(sys.argv[1], encoding="utf-8"):
    if len(ln.rstrip("\n")) > 80: print(ln, end="")' page.txt)
[ -z "$long" ] || fail "rendered lines wider than 80 columns: $long"

# The checks can fail: run them on broken copies and expect each to say
# what is wrong.
ndef=$(man_py help-keys help.txt | grep -c "=.")
key=$(man_py help-keys help.txt | grep "=." | sed -n "$((ndef / 2 + 1))p" | cut -d= -f1)
[ -n "$key" ] || fail "no key with a default found in --help"
expect() { # WHAT PATTERN HOW ARG: the broken page must fail, naming PATTERN
	man_py broken "$PAGE" "$3" "$4" broken.1
	if out=$(check_page broken.1); then
		fail "$1: the checks passed a page with $3 $4"
	fi
	grep -qF -- "$2" <<<"$out" || fail "$1: the checks did not name $2: $out"
	echo "ok the checks catch $1: $(grep -F -- "$2" <<<"$out" | head -1)"
}
expect "a key not documented" "not in the man page: $key" drop-entry "$key"
expect "a key documented that is not" "not in vmdkfs --help: bogus_key" \
	add-entry bogus_key
expect "a wrong default" "$key: --help gives the default" change-default "$key"
expect "a usage form missing" 'SYNOPSIS lacks "vmdkfs cleanup' drop-synopsis cleanup
expect "an unescaped hyphen" "a hyphen not written" unescaped -
expect "a groff warning" "groff warns" bad-macro -

# make install: the program and the page, which man renders.
make -C "$TOP" install DESTDIR="$WORK/inst" PREFIX=/usr >make.log 2>&1 ||
	fail "make install: $(tail -5 make.log)"
[ -x inst/usr/bin/vmdkfs ] || fail "make install: no bin/vmdkfs"
inst=inst/usr/share/man/man1/vmdkfs.1
[ -f $inst ] || fail "make install: no share/man/man1/vmdkfs.1 ($(cd inst && find . -type f | tr '\n' ' '))"
cmp -s $inst "$PAGE" || fail "make install: $inst differs from vmdkfs.1"
[ "$(stat -c %a $inst)" = 644 ] || fail "make install: $inst has mode $(stat -c %a $inst)"
MANWIDTH=80 man -l $inst >inst.txt 2>man.err || fail "man -l $inst: $(cat man.err)"
[ ! -s man.err ] || fail "man -l $inst complains: $(cat man.err)"
if ! grep -q '^NAME' inst.txt || ! grep -q 'vmdkfs - mount VMware virtual disks' inst.txt; then
	fail "man -l $inst: no NAME section: $(head -5 inst.txt)"
fi
grep -q nbdssl inst.txt || fail "man -l $inst does not mention nbdssl"
echo "ok make install: bin/vmdkfs, share/man/man1/vmdkfs.1, rendered by man"
# ... and the nbdkit plugin where nbdkit looks for plugins by name (its
# plugindir), with its page.
pdir=$(pkg-config --variable=plugindir nbdkit 2>/dev/null || true)
if [ -n "$pdir" ] && command -v nbdkit >/dev/null; then
	[ "$pdir" = "$(nbdkit --dump-config | sed -n 's/^plugindir=//p')" ] ||
		fail "pkg-config's plugindir $pdir is not nbdkit's"
	p=inst$pdir/nbdkit-vmdkfs-plugin.so
	[ -f "$p" ] || fail "make install: no $pdir/nbdkit-vmdkfs-plugin.so ($(cd inst && find . -type f | tr '\n' ' '))"
	case $VMDKFS in
	*-san) ;; # the sanitizer build's plugin needs its runtimes preloaded
	*) nbdkit --dump-plugin "$WORK/$p" | grep -q '^name=vmdkfs$' || fail "nbdkit --dump-plugin $p" ;;
	esac
	pinst=inst/usr/share/man/man1/nbdkit-vmdkfs-plugin.1
	[ -f $pinst ] || fail "make install: no nbdkit-vmdkfs-plugin.1"
	MANWIDTH=80 man -l $pinst >pinst.txt 2>man.err || fail "man -l $pinst: $(cat man.err)"
	[ ! -s man.err ] || fail "man -l $pinst complains: $(cat man.err)"
	tr -s ' ' <pinst.txt | grep -q 'nbdkit-vmdkfs-plugin - serve a VMware virtual disk' || fail "man -l $pinst: $(head -5 pinst.txt)"
	echo "ok make install: the nbdkit plugin in $pdir (nbdkit vmdkfs finds it), its page rendered by man"
fi
