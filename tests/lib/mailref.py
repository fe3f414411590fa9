#!/usr/bin/env python3
"""Reference data for the integration tests, fetched from the server independently of mailfs
(python's imaplib/raw POP3, read-only: EXAMINE and BODY.PEEK only), and checks that compare a
mount against it.

  mailref.py imap-dump HOST PORT CAFILE USER OUTDIR    password in $MAILREF_PASSWORD
  mailref.py pop3-dump HOST PORT CAFILE USER OUTDIR
  mailref.py expect MOUNT REFDIR OUTDIR   lay out REFDIR's bodies under the mount's names
  mailref.py tree MOUNT REFDIR            folder tree of the mount matches the server's
  mailref.py names MOUNT                  every name is safe (UTF-8, no controls, <= 255 bytes)
  mailref.py status FILE KEY              one value of a .mailfs-status file
  mailref.py meta MOUNT REFDIR            mtime, user.imap.* xattrs of every message = the server's
  mailref.py same-bytes DIR_A DIR_B       the same multiset of message bytes (sha256) in both
  mailref.py same-names IMAP_DIR POP3_DIR the same "date sender - subject" parts in both
  mailref.py pop3-login HOST PORT CAFILE USER   log in, STAT, QUIT (within 8 s); prints STAT
  mailref.py prompt-run CMD...            run CMD on a new pty, type $MAILREF_PASSWORD at its
                                          "Password" prompt; prints the transcript
  mailref.py syslog-listen SOCKET OUTFILE  a /dev/log stand-in: append every datagram to OUTFILE
  mailref.py blackhole PORTFILE           a loopback port where connect() never completes (its
                                          accept queue is full); writes the port, then waits

Exit status 0 when the check passes; diagnostics on stdout, one per line.
"""
import base64
import imaplib
import json
import os
import re
import socket
import ssl
import sys
import unicodedata


def mutf7_decode(name):
    """RFC 3501 modified UTF-7 mailbox name -> str."""
    out, i = [], 0
    while i < len(name):
        c = name[i]
        if c != "&":
            out.append(c)
            i += 1
            continue
        j = name.index("-", i)
        chunk = name[i + 1:j]
        if chunk == "":
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            out.append(base64.b64decode(b64).decode("utf-16-be"))
        i = j + 1
    return "".join(out)


def component(decoded):
    """The mount's directory name for one decoded folder component (see include/name.h)."""
    s = decoded.replace("%", "%25").replace("/", "%2F")
    if s.startswith("."):
        s = "%2E" + s[1:]
    return s


def tls_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx


LIST_RE = re.compile(rb'^\((?P<attrs>[^)]*)\) (?P<delim>"[^"]*"|NIL) (?P<name>.*)$')


def imap_dump(host, port, cafile, user, outdir):
    password = os.environ["MAILREF_PASSWORD"]
    m = imaplib.IMAP4_SSL(host, int(port), ssl_context=tls_context(cafile), timeout=60)
    m.login(user, password)
    typ, lines = m.list('""', "*")
    folders = []
    for line in lines:
        if isinstance(line, tuple):  # name sent as a literal
            head, lit = line
            mo = LIST_RE.match(head.rsplit(b" ", 1)[0] + b" x")
            rawname = lit.decode()
        else:
            mo = LIST_RE.match(line)
            rawname = mo.group("name").decode()
            if rawname.startswith('"'):
                rawname = rawname[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        attrs = mo.group("attrs").decode().split()
        delim = mo.group("delim").decode()
        delim = None if delim == "NIL" else delim[1:-1]
        decoded = mutf7_decode(rawname)
        parts = decoded.split(delim) if delim else [decoded]
        path = "/".join(component(p) for p in parts)
        selectable = not any(a.lower() in ("\\noselect", "\\nonexistent") for a in attrs)
        folders.append({"raw": rawname, "decoded": decoded, "path": path, "attrs": attrs,
                        "selectable": selectable, "messages": []})
    for f in folders:
        if not f["selectable"]:
            continue
        typ, data = m.select('"%s"' % f["raw"].replace("\\", "\\\\").replace('"', '\\"'),
                             readonly=True)
        assert typ == "OK", (f, data)
        f["uidvalidity"] = int(m.untagged_responses.get("UIDVALIDITY", [b"0"])[-1])
        if int(data[0]) == 0:
            continue
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE)")
        for item in data:
            if not item:
                continue
            s = item.decode() if isinstance(item, bytes) else item[0].decode()
            uid = int(re.search(r"UID (\d+)", s).group(1))
            flags = re.search(r"FLAGS \(([^)]*)\)", s).group(1).split()
            size = int(re.search(r"RFC822\.SIZE (\d+)", s).group(1))
            idate = re.search(r'INTERNALDATE "([^"]*)"', s).group(1)
            f["messages"].append({"uid": uid, "flags": [x for x in flags if x != "\\Recent"],
                                  "size": size, "internaldate": idate})
        bdir = os.path.join(outdir, "bodies", f["path"])
        os.makedirs(bdir, exist_ok=True)
        for msg in f["messages"]:
            typ, data = m.uid("FETCH", str(msg["uid"]), "(BODY.PEEK[])")
            body = next(x[1] for x in data if isinstance(x, tuple))
            with open(os.path.join(bdir, "%d.eml" % msg["uid"]), "wb") as fh:
                fh.write(body)
            msg["id"] = str(msg["uid"])
            msg["body_len"] = len(body)
        m.close()
    m.logout()
    with open(os.path.join(outdir, "manifest.json"), "w") as fh:
        json.dump({"backend": "imap", "folders": folders}, fh, indent=1, ensure_ascii=False)


class Pop3:
    def __init__(self, host, port, cafile):
        sock = socket.create_connection((host, int(port)), timeout=60)
        self.s = tls_context(cafile).wrap_socket(sock, server_hostname=host)
        self.f = self.s.makefile("rb")
        self.line()

    def line(self):
        l = self.f.readline()
        if not l.startswith(b"+OK"):
            raise RuntimeError("POP3: %r" % l)
        return l

    def cmd(self, c, multi=False):
        self.s.sendall(c.encode() + b"\r\n")
        first = self.line()
        if not multi:
            return first
        data = []
        while True:
            l = self.f.readline()
            if l == b".\r\n":
                return b"".join(data)
            if l.startswith(b"."):
                l = l[1:]
            data.append(l)


def pop3_dump(host, port, cafile, user, outdir):
    p = Pop3(host, port, cafile)
    p.cmd("USER " + user)
    p.cmd("PASS " + os.environ["MAILREF_PASSWORD"])
    uidl = [l.split() for l in p.cmd("UIDL", True).decode().splitlines()]
    sizes = dict(l.split() for l in p.cmd("LIST", True).decode().splitlines())
    bdir = os.path.join(outdir, "bodies", "INBOX")
    os.makedirs(bdir, exist_ok=True)
    msgs = []
    for n, u in uidl:
        # TOP with a huge line count returns the same octets as RETR, but RETR makes Dovecot
        # set \Seen (even when the session ends without QUIT), and the reference must not
        # change what it measures.
        body = p.cmd("TOP %s 2147483647" % n, True)
        # A message without a final line break gets one CRLF added by the server, only to
        # frame the ".": LIST's size (the server's own size of the message) does not count it.
        if len(body) == int(sizes[n]) + 2 and body.endswith(b"\r\n"):
            body = body[:-2]
        with open(os.path.join(bdir, u + ".eml"), "wb") as fh:
            fh.write(body)
        msgs.append({"uid": int(n), "id": u, "size": int(sizes[n]), "body_len": len(body)})
    # No QUIT: closing without it leaves the maildrop untouched (no UPDATE state).
    p.s.close()
    folders = [{"raw": "INBOX", "decoded": "INBOX", "path": "INBOX", "attrs": [],
                "selectable": True, "messages": msgs}]
    with open(os.path.join(outdir, "manifest.json"), "w") as fh:
        json.dump({"backend": "pop3", "folders": folders}, fh, indent=1, ensure_ascii=False)


def load(refdir):
    with open(os.path.join(refdir, "manifest.json")) as fh:
        return json.load(fh)


NAME_RE = re.compile(r"^\d{4}-\d\d-\d\d \d{4} .* - .*\.(?P<id>[^./]+)\.eml$", re.S)
STATUS_FILE = ".mailfs-status"


def mount_files(mount):
    """{relative dir: [file names]} using only readdir (no stat of files, no reads)."""
    tree = {}
    for dirpath, dirnames, filenames in os.walk(mount):
        rel = os.path.relpath(dirpath, mount)
        rel = "" if rel == "." else rel
        tree[rel] = [n for n in filenames if not (rel == "" and n == STATUS_FILE)]
    return tree


def expect(mount, refdir, outdir):
    """Make OUTDIR a copy of what the mount should contain: the server's bytes under the
    mount's file names. Prints problems (missing/extra/duplicate messages)."""
    ref = load(refdir)
    byfolder = {f["path"]: f for f in ref["folders"]}
    problems = []
    tree = mount_files(mount)
    listing = []
    for rel, names in sorted(tree.items()):
        os.makedirs(os.path.join(outdir, rel), exist_ok=True)
        f = byfolder.get(rel)
        if f is None:
            if names:
                problems.append("files in %r, which is no folder on the server" % rel)
            continue
        want = {m["id"]: m for m in f["messages"]}
        seen = set()
        for n in sorted(names):
            mo = NAME_RE.match(n)
            mid = mo.group("id") if mo else n.rsplit(".", 2)[-2] if n.count(".") >= 2 else None
            if mid not in want:
                problems.append("%s/%s: no message with id %r on the server" % (rel, n, mid))
                continue
            if mid in seen:
                problems.append("%s/%s: id %s appears twice" % (rel, n, mid))
            seen.add(mid)
            src = os.path.join(refdir, "bodies", f["path"], mid + ".eml")
            dst = os.path.join(outdir, rel, n)
            with open(src, "rb") as a, open(dst, "wb") as b:
                b.write(a.read())
            listing.append((os.path.join(rel, n), want[mid]["uid"], mid))
        for mid in sorted(set(want) - seen, key=str):
            problems.append("%s: message %s missing from the mount" % (rel or "/", mid))
    with open(outdir.rstrip("/") + ".list", "w") as fh:
        for path, uid, mid in listing:
            fh.write("%s\n" % path)
    for p in problems:
        print(p)
    return 1 if problems else 0


def tree(mount, refdir):
    ref = load(refdir)
    problems = []
    t = mount_files(mount)
    dirs = set(t)
    want = set()
    for f in ref["folders"]:
        parts = f["path"].split("/")
        for i in range(1, len(parts) + 1):
            want.add("/".join(parts[:i]))
        if f["path"] not in dirs:
            problems.append("folder %r (%s) is not a directory on the mount" % (f["path"], f["raw"]))
        elif not f["selectable"] and t[f["path"]]:
            problems.append("\\Noselect folder %r has files: %r" % (f["path"], t[f["path"]][:3]))
    for d in sorted(dirs - want - {""}):
        problems.append("directory %r is not a folder on the server" % d)
    for p in problems:
        print(p)
    return 1 if problems else 0


BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A)) | {0x200E, 0x200F, 0x061C}


def name_problem(name_bytes):
    if len(name_bytes) > 255:
        return "longer than 255 bytes (%d)" % len(name_bytes)
    try:
        s = name_bytes.decode("utf-8", "strict")
    except UnicodeDecodeError as e:
        return "not valid UTF-8 (%s)" % e
    for ch in s:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o < 0xA0:
            return "control character U+%04X" % o
        if o in BIDI:
            return "bidi control U+%04X" % o
    if s in (".", "..") or "/" in s:
        return "not a single path component"
    if unicodedata.normalize("NFC", s) != s:
        return "not NFC"
    return None


def names(mount):
    problems = []
    count = 0
    mb = os.fsencode(mount)
    for dirpath, dirnames, filenames in os.walk(mb):
        rel = os.path.relpath(dirpath, mb)
        seen = set()
        for n in dirnames + filenames:
            if not (rel == b"." and n == os.fsencode(STATUS_FILE)):
                count += 1
            if n in seen:
                problems.append("%r: duplicate name %r" % (rel, n))
            seen.add(n)
            p = name_problem(n)
            if p:
                problems.append("%r/%r: %s" % (rel, n, p))
        for n in filenames:
            if rel == b"." and n == os.fsencode(STATUS_FILE):
                continue
            s = n.decode("utf-8", "replace")
            if not NAME_RE.match(s):
                problems.append("%r/%r: not 'YYYY-MM-DD HHMM <sender> - <subject>.<id>.eml'" % (rel, n))
            elif s.startswith((".", "-")):
                problems.append("%r/%r: starts with '.' or '-'" % (rel, n))
    for p in problems:
        print(p)
    if count == 0:
        print("no names at all under %s" % mount)
        return 1
    return 1 if problems else 0


def status(path, key):
    with open(path) as fh:
        for line in fh:
            k, _, v = line.rstrip("\n").partition(": ")
            if k == key:
                print(v)
                return 0
    return 1


IDATE_MONTHS = {m: i + 1 for i, m in enumerate(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}


def internaldate_epoch(s):
    """'26-Nov-2025 10:42:07 +0000' -> seconds since the epoch."""
    import calendar
    mo = re.match(r"\s*(\d+)-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$", s)
    d, mon, y, hh, mm, ss, sign, oh, om = mo.groups()
    t = calendar.timegm((int(y), IDATE_MONTHS[mon], int(d), int(hh), int(mm), int(ss)))
    off = (int(oh) * 60 + int(om)) * 60
    return t - off if sign == "+" else t + off


def meta(mount, refdir):
    """Per message: st_mtime is the INTERNALDATE; user.imap.uid/uidvalidity are the server's;
    user.imap.flags is the server's flag set (no session flag \\Recent); no xattr is empty."""
    ref = load(refdir)
    problems, checked = [], 0
    tree = mount_files(mount)
    for f in ref["folders"]:
        if not f["selectable"]:
            continue
        byid = {m["id"]: m for m in f["messages"]}
        for n in tree.get(f["path"], []):
            mo = NAME_RE.match(n)
            m = byid.get(mo.group("id")) if mo else None
            if m is None:
                continue
            p = os.path.join(mount, f["path"], n)
            where = "%s/%s" % (f["path"], n)
            checked += 1
            want = internaldate_epoch(m["internaldate"])
            got = int(os.stat(p).st_mtime)
            if got != want:
                problems.append("%s: mtime %d, INTERNALDATE %s = %d" % (where, got, m["internaldate"], want))
            x = {}
            for a in os.listxattr(p):
                x[a] = os.getxattr(p, a).decode("utf-8", "replace")
            if x.get("user.imap.uid") != str(m["uid"]):
                problems.append("%s: user.imap.uid %r, server UID %d" % (where, x.get("user.imap.uid"), m["uid"]))
            if x.get("user.imap.uidvalidity") != str(f["uidvalidity"]):
                problems.append("%s: user.imap.uidvalidity %r, server %d" % (where, x.get("user.imap.uidvalidity"), f["uidvalidity"]))
            flags = x.get("user.imap.flags")
            if flags is None or sorted(flags.split()) != sorted(m["flags"]):
                problems.append("%s: user.imap.flags %r, server %r" % (where, flags, m["flags"]))
            for a in ("user.imap.internaldate",):
                if not x.get(a):
                    problems.append("%s: %s missing or empty" % (where, a))
            for a in x:
                if not a.startswith("user."):
                    problems.append("%s: unexpected attribute %s" % (where, a))
    for p in problems:
        print(p)
    print("checked %d messages" % checked)
    if checked == 0:
        return 1
    return 1 if problems else 0


def digests(d):
    import hashlib
    out = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if name == STATUS_FILE or not os.path.isfile(p):
            continue
        with open(p, "rb") as fh:
            data = fh.read()
        out[name] = (hashlib.sha256(data).hexdigest(), data)
    return out


def same_bytes(a, b):
    """Equal multisets of sha256 digests. The one allowed difference: a message without a
    final line break may have gained one CRLF on one side (POP3 must end a message with CRLF)."""
    da, db = digests(a), digests(b)
    ha = sorted(h for h, _ in da.values())
    hb = sorted(h for h, _ in db.values())
    print("%d files in %s, %d in %s" % (len(da), a, len(db), b))
    if not da:
        print("no files at all")
        return 1
    only_a = [(n, d) for n, (h, d) in da.items() if h not in hb]
    only_b = [(n, d) for n, (h, d) in db.items() if h not in ha]
    problems = len(ha) != len(hb) or len(set(ha)) != len(ha)
    for na, data in list(only_a):
        for nb, other in list(only_b):
            if other == data + b"\r\n" or data == other + b"\r\n":
                print("allowed: %r and %r differ only by a final CRLF" % (na, nb))
                only_a.remove((na, data))
                only_b.remove((nb, other))
                break
    for n, _ in only_a:
        print("only in %s: %r" % (a, n))
    for n, _ in only_b:
        print("only in %s: %r" % (b, n))
    return 1 if (only_a or only_b or problems) else 0


def name_prefix(n):
    """The name without ".<id>.eml", cut to 150 bytes: a long subject is shortened to make room
    for the id, and a UIDL is longer than a UID, so only this much is the same on both sides."""
    mo = NAME_RE.match(n)
    p = n[:n.rindex("." + mo.group("id") + ".eml")] if mo else n
    return p.encode("utf-8")[:150].decode("utf-8", "ignore")


def same_names(imap_dir, pop3_dir):
    """The "YYYY-MM-DD HHMM sender - subject" part of every name, as multisets. A message with
    no Date header is dated by INTERNALDATE over IMAP, which POP3 does not have: for those only
    the part after the date must match (and the difference is printed)."""
    def prefixes(d):
        out = []
        for n in sorted(os.listdir(d)):
            if n == STATUS_FILE:
                continue
            with open(os.path.join(d, n), "rb") as fh:
                head = fh.read(65536).split(b"\r\n\r\n", 1)[0]
            dated = re.search(rb"(?im)^date:", head) is not None
            out.append((name_prefix(n), dated))
        return out
    pi, pp = prefixes(imap_dir), prefixes(pop3_dir)
    problems = []
    exact_i = sorted(p for p, dated in pi if dated)
    exact_p = sorted(p for p, dated in pp if dated)
    if exact_i != exact_p:
        for p in sorted(set(exact_i) ^ set(exact_p)):
            problems.append("only in %s: %r" % (imap_dir if p in exact_i else pop3_dir, p))
        if not problems:
            problems.append("the same names, but not as often")
    undated_i = sorted(p[16:] for p, dated in pi if not dated)
    undated_p = sorted(p[16:] for p, dated in pp if not dated)
    if undated_i != undated_p:
        problems.append("undated messages differ: %r vs %r" % (undated_i, undated_p))
    for (a, dated) in pi:
        if not dated:
            b = [p for p, d in pp if not d and p[16:] == a[16:]]
            print("note: no Date header: IMAP %r, POP3 %r" % (a, b[0] if b else None))
    for p in problems:
        print(p)
    print("%d names compared" % len(pi))
    return 1 if problems or not pi else 0


def pop3_login(host, port, cafile, user):
    import poplib
    p = poplib.POP3_SSL(host, int(port), context=tls_context(cafile), timeout=8)
    p.user(user)
    p.pass_(os.environ["MAILREF_PASSWORD"])
    print("STAT %d messages, %d octets" % p.stat())
    p.quit()
    return 0


def prompt_run(*cmd):
    """Like a user at a terminal: wait for the prompt, type the password, read to the end."""
    import pty
    import select
    import time
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], list(cmd))
    out, typed, deadline = b"", False, time.time() + 60
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if not typed and b"assword" in out:
            time.sleep(0.2)  # let it turn echo off first, as a person would be slower still
            os.write(fd, os.environ["MAILREF_PASSWORD"].encode() + b"\n")
            typed = True
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode("utf-8", "replace"))
    if not typed:
        print("\n(no prompt seen)")
    return os.waitstatus_to_exitcode(status) if typed else 99


def syslog_listen(path, outfile):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)
    with open(outfile, "ab", buffering=0) as fh:
        while True:
            fh.write(s.recv(65536) + b"\n")


def blackhole(portfile):
    import time
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fill = []
    for _ in range(3):  # never accepted: once the queue is full, further SYNs are dropped
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fill.append(c)
    time.sleep(0.3)
    with open(portfile + ".tmp", "w") as fh:
        fh.write("%d\n" % port)
    os.rename(portfile + ".tmp", portfile)
    while True:
        time.sleep(3600)


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "imap-dump":
        return imap_dump(*args) or 0
    if cmd == "pop3-dump":
        return pop3_dump(*args) or 0
    if cmd == "expect":
        return expect(*args)
    if cmd == "tree":
        return tree(*args)
    if cmd == "names":
        return names(*args)
    if cmd == "status":
        return status(*args)
    if cmd == "meta":
        return meta(*args)
    if cmd == "same-bytes":
        return same_bytes(*args)
    if cmd == "same-names":
        return same_names(*args)
    if cmd == "pop3-login":
        return pop3_login(*args)
    if cmd == "prompt-run":
        return prompt_run(*args)
    if cmd == "syslog-listen":
        return syslog_listen(*args)
    if cmd == "blackhole":
        return blackhole(*args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
