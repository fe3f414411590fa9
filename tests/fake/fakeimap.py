#!/usr/bin/env python3
"""A scripted IMAP server for what a real Dovecot cannot be made to do: lie about sizes, inject
bytes after STARTTLS, stall, or answer with hostile data. Read-only and in memory.

  fakeimap.py --scenario NAME --port-file F --log F [--tls] [--cert C --key K]

Listens on 127.0.0.1 (port 0 = any free port, written to --port-file once listening). Every line
a client sends is appended to --log as "<conn> <line>", so tests can assert what was (not) sent.
User "alice", password "secret". One folder, INBOX, with the messages in MESSAGES below.

Scenarios (see SCENARIOS): normal, nostarttls, starttls-inject, starttls-no, preauth,
size-bigger, size-smaller, stall-greeting, stall-login, stall-fetch, garbage-greeting,
garbage-list, huge-literal-list, huge-literal-fetch, deep-nesting-list, deep-nesting-fetch,
long-line, bye-fetch, bad-numbers.
"""
import base64
import email.utils
import os
import random
import re
import ssl
import sys
import time

import fakebase

SCENARIOS = {
    "normal": "a well-behaved server with STARTTLS",
    "nostarttls": "no STARTTLS in CAPABILITY; LOGIN accepted in plaintext",
    "starttls-inject": "plaintext bytes follow the STARTTLS OK in the same packet (CVE-2020-14954)",
    "starttls-no": "STARTTLS advertised but refused with NO",
    "preauth": "PREAUTH greeting on a plaintext connection (CVE-2020-14093)",
    "size-bigger": "RFC822.SIZE of even UIDs is 100 more than the real size",
    "size-smaller": "RFC822.SIZE of even UIDs is 100 less than the real size",
    "stall-greeting": "accepts the connection and never says anything",
    "stall-login": "never answers LOGIN/AUTHENTICATE",
    "stall-fetch": "never answers a FETCH of body bytes (envelopes and 2-byte size probes are fine)",
    "garbage-greeting": "random binary instead of a greeting",
    "garbage-list": "random binary lines in answer to LIST",
    "huge-literal-list": "LIST answer announces a literal of 2^64-1 octets",
    "huge-literal-fetch": "body FETCH answer announces a literal of 2^64-1 octets",
    "deep-nesting-list": "LIST answer with 100000 nested parentheses",
    "deep-nesting-fetch": "FETCH answers (envelopes and bodies) with 100000 nested parentheses",
    "long-line": "a 64 MiB response line without CRLF in answer to LIST",
    "bye-fetch": "BYE and close on every body FETCH",
    "bad-numbers": "negative and 30-digit numbers in FETCH answers",
}

USER, PASSWORD = "alice", "secret"
UIDVALIDITY = 1700000000


def make_messages():
    """Four messages: small, ~20 KB, non-ASCII subject, ~300 KB. CRLF, deterministic."""
    def msg(uid, frm, subject, date, body):
        head = ("From: %s\r\nTo: alice@example.org\r\nSubject: %s\r\nDate: %s\r\n"
                "Message-ID: <fake-%d@example.net>\r\n\r\n" % (frm, subject, date, uid))
        return head.encode() + body
    rnd = random.Random(4711)
    medium = b"".join(b"line %05d of a medium message %s\r\n" % (i, b"x" * rnd.randrange(10, 60))
                      for i in range(400))
    big = b"".join(b"%06d %s\r\n" % (i, bytes(rnd.choice(b"abcdefghij") for _ in range(70)))
                   for i in range(4000))
    return {
        1: msg(1, "Alice Smith <alice@example.org>", "Hello from the fake server",
               "Wed, 26 Nov 2025 10:42:00 +0000", b"Just a short note.\r\n"),
        2: msg(2, "Bob <bob@example.net>", "Medium message",
               "Tue, 25 Nov 2025 09:00:00 +0000", medium),
        3: msg(3, "=?UTF-8?Q?Ren=C3=A9e?= <renee@example.fr>",
               "=?UTF-8?Q?Caf=C3=A9_=E2=98=95?=", "Mon, 24 Nov 2025 08:00:00 +0100",
               b"Un caf\xc3\xa9?\r\n"),
        4: msg(4, "Ops <ops@example.com>", "Big log", "Sun, 23 Nov 2025 07:00:00 +0000", big),
    }


MESSAGES = make_messages()
HUGE = "18446744073709551615"


def q(s):
    """An IMAP string: quoted when safe, else a literal."""
    if s is None:
        return b"NIL"
    b = s.encode() if isinstance(s, str) else s
    if re.fullmatch(rb"[\x20-\x7e]*", b) and b'"' not in b and b"\\" not in b:
        return b'"' + b + b'"'
    return b"{%d}\r\n" % len(b) + b


def headers(raw):
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    out = {}
    for line in re.split(r"\r\n(?![ \t])", head):
        k, _, v = line.partition(":")
        out.setdefault(k.strip().lower(), v.strip())
    return out


def addresses(value):
    if not value:
        return b"NIL"
    parts = []
    for name, addr in email.utils.getaddresses([value]):
        mbox, _, host = addr.partition("@")
        parts.append(b"(" + q(name or None) + b" NIL " + q(mbox) + b" " + q(host or None) + b")")
    return b"(" + b"".join(parts) + b")"


def envelope(raw):
    h = headers(raw)
    frm = addresses(h.get("from"))
    return (b"(" + q(h.get("date")) + b" " + q(h.get("subject")) + b" " + frm + b" " + frm +
            b" " + frm + b" " + addresses(h.get("to")) + b" " + addresses(h.get("cc")) + b" NIL " +
            q(h.get("in-reply-to")) + b" " + q(h.get("message-id")) + b")")


def parse_set(spec, maxval):
    out = set()
    for part in spec.split(","):
        a, _, b = part.partition(":")
        a = maxval if a == "*" else int(a)
        b = a if not b else (maxval if b == "*" else int(b))
        lo, hi = min(a, b), max(a, b)
        out.update(range(lo, min(hi, maxval) + 1))
        if lo > maxval and a != b:
            out.add(maxval)
    return out


ITEM_RE = re.compile(r"(BODY\.PEEK|BODY|BINARY\.PEEK|BINARY)\[([^\]]*)\](?:<(\d+)\.(\d+)>)?|[A-Z0-9.]+",
                     re.I)


def fetch_items(spec):
    spec = spec.strip()
    if spec.startswith("(") and spec.endswith(")"):
        spec = spec[1:-1]
    macros = {"ALL": "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE", "FAST": "FLAGS INTERNALDATE RFC822.SIZE",
              "FULL": "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY"}
    spec = macros.get(spec.upper(), spec)
    return [m for m in ITEM_RE.finditer(spec)]


class Handler(fakebase.LineHandler):
    def setup(self):
        super().setup()
        self.selected = False
        self.seen = set()

    def read_command(self):
        """One command with its literals inlined (synchronising ones get a continuation)."""
        line = self.readline()
        if line is None:
            return None
        full = line
        while True:
            m = re.search(rb"\{(\d+)(\+?)\}$", line)
            if not m:
                break
            n = int(m.group(1))
            if not m.group(2):
                self.send(b"+ go ahead\r\n")
            while len(self.rbuf) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return None
                self.rbuf += chunk
            lit, self.rbuf = self.rbuf[:n], self.rbuf[n:]
            line = self.readline()
            if line is None:
                return None
            full += b"\r\n" + lit + line
        return full

    def stall(self):
        self.log("STALL")
        while not self.server.stopping.wait(1):
            pass

    def caps(self):
        c = "IMAP4rev1 LITERAL+ ID ENABLE AUTH=PLAIN"
        sc = self.server.scenario
        if not self.tls and sc not in ("nostarttls",):
            c += " STARTTLS"
        return c

    def handle(self):
        sc = self.server.scenario
        self.log("CONNECT tls=%d" % self.tls)
        try:
            if self.tls:
                self.sock = self.server.ctx.wrap_socket(self.sock, server_side=True)
            if sc == "stall-greeting":
                return self.stall()
            if sc == "garbage-greeting":
                rnd = random.Random(1)
                self.send(bytes(rnd.randrange(256) for _ in range(65536)) + b"\r\n")
                return self.stall()
            if sc == "preauth" and not self.tls:
                self.send(b"* PREAUTH [CAPABILITY IMAP4rev1] logged in as alice\r\n")
            else:
                self.send(b"* OK [CAPABILITY " + self.caps().encode() + b"] fake IMAP ready\r\n")
            while True:
                line = self.read_command()
                if line is None:
                    self.log("EOF")
                    return
                text = line.decode("utf-8", "replace")
                self.log(text)
                parts = text.split(" ", 2)
                if len(parts) < 2:
                    self.send(b"* BAD no command\r\n")
                    continue
                tag, cmd = parts[0], parts[1].upper()
                arg = parts[2] if len(parts) > 2 else ""
                if cmd == "UID":
                    sub, _, arg = arg.partition(" ")
                    cmd = "UID " + sub.upper()
                if not self.dispatch(tag.encode(), cmd, arg):
                    return
        except (ConnectionError, ssl.SSLError, OSError) as e:
            self.log("CLOSED %s" % e.__class__.__name__)

    def ok(self, tag, text=b"done"):
        self.send(tag + b" OK " + text + b"\r\n")

    def dispatch(self, tag, cmd, arg):
        sc = self.server.scenario
        if cmd == "CAPABILITY":
            self.send(b"* CAPABILITY " + self.caps().encode() + b"\r\n")
            self.ok(tag)
        elif cmd == "STARTTLS":
            if self.tls or sc == "nostarttls":
                self.send(tag + b" BAD no STARTTLS here\r\n")
            elif sc == "starttls-no":
                self.send(tag + b" NO not today\r\n")
            else:
                extra = b""
                if sc == "starttls-inject":
                    extra = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected before TLS\r\n"
                self.send(tag + b" OK begin TLS now\r\n" + extra)
                if self.rbuf:
                    self.log("CLIENT-PIPELINED-AFTER-STARTTLS %r" % self.rbuf[:80])
                self.sock = self.server.ctx.wrap_socket(self.sock, server_side=True)
                self.tls = True
                self.log("TLS-ESTABLISHED")
        elif cmd in ("LOGIN", "AUTHENTICATE"):
            if sc == "stall-login":
                self.stall()
                return False
            user, pw = self.credentials(cmd, arg)
            if user == USER and pw == PASSWORD:
                self.log("AUTH-OK plaintext=%d" % (not self.tls))
                self.ok(tag, b"logged in")
            else:
                self.send(tag + b" NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
        elif cmd == "LOGOUT":
            self.send(b"* BYE bye\r\n")
            self.ok(tag)
            return False
        elif cmd in ("NOOP", "CHECK", "ENABLE", "CLOSE", "UNSELECT"):
            self.ok(tag)
        elif cmd == "ID":
            self.send(b'* ID ("name" "fakeimap")\r\n')
            self.ok(tag)
        elif cmd == "NAMESPACE":
            self.send(b'* NAMESPACE (("" "/")) NIL NIL\r\n')
            self.ok(tag)
        elif cmd in ("LIST", "LSUB"):
            return self.do_list(tag, cmd)
        elif cmd in ("EXAMINE", "SELECT", "STATUS"):
            n = len(MESSAGES)
            if cmd == "STATUS":
                self.send(b"* STATUS INBOX (MESSAGES %d UIDNEXT %d UIDVALIDITY %d UNSEEN 0)\r\n"
                          % (n, n + 1, UIDVALIDITY))
            else:
                if cmd == "SELECT":
                    self.log("FORBIDDEN SELECT")
                self.send(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                          b"* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY %d] ok\r\n"
                          b"* OK [UIDNEXT %d] ok\r\n" % (n, UIDVALIDITY, n + 1))
                self.selected = True
            self.ok(tag, b"[READ-ONLY] done" if cmd == "EXAMINE" else b"done")
        elif cmd in ("SEARCH", "UID SEARCH"):
            self.send(b"* SEARCH " + b" ".join(b"%d" % u for u in sorted(MESSAGES)) + b"\r\n")
            self.ok(tag)
        elif cmd in ("FETCH", "UID FETCH"):
            return self.do_fetch(tag, cmd == "UID FETCH", arg)
        elif cmd == "IDLE":
            self.send(b"+ idling\r\n")
            if self.readline() is None:
                return False
            self.ok(tag)
        elif cmd in ("STORE", "UID STORE", "EXPUNGE", "UID EXPUNGE", "COPY", "UID COPY", "MOVE",
                     "UID MOVE", "APPEND", "CREATE", "DELETE", "RENAME"):
            self.log("FORBIDDEN %s" % cmd)
            self.send(tag + b" NO read-only fake\r\n")
        else:
            self.send(tag + b" BAD unknown command\r\n")
        return True

    def credentials(self, cmd, arg):
        if cmd == "LOGIN":
            vals = []
            rest = arg
            i = 0
            while i < len(rest) and len(vals) < 2:
                if rest[i] == " ":
                    i += 1
                elif rest[i] == '"':
                    m = re.match(r'"((?:[^"\\]|\\.)*)"', rest[i:])
                    vals.append(re.sub(r"\\(.)", r"\1", m.group(1)))
                    i += m.end()
                elif rest[i] == "{":
                    m = re.match(r"\{(\d+)\+?\}\r\n", rest[i:])
                    n = int(m.group(1))
                    vals.append(rest[i + m.end():i + m.end() + n])
                    i += m.end() + n
                else:
                    m = re.match(r"[^ ]+", rest[i:])
                    vals.append(m.group(0))
                    i += m.end()
            return (vals + ["", ""])[:2]
        mech, _, ir = arg.partition(" ")
        if mech.upper() != "PLAIN":
            return "", ""
        if not ir:
            self.send(b"+ \r\n")
            ir = (self.readline() or b"").decode()
        try:
            _, user, pw = base64.b64decode(ir).decode().split("\0")
        except Exception:
            return "", ""
        return user, pw

    def do_list(self, tag, cmd):
        sc = self.server.scenario
        if sc == "garbage-list":
            rnd = random.Random(2)
            for _ in range(64):
                self.send(b"* " + bytes(rnd.randrange(256) for _ in range(500)).replace(b"\n", b"") + b"\r\n")
            self.ok(tag)
        elif sc == "huge-literal-list":
            self.send(b'* LIST () "/" {' + HUGE.encode() + b"}\r\nINBOX" + b"x" * 4096)
            time.sleep(0.5)
            return False
        elif sc == "deep-nesting-list":
            self.send(b"* LIST " + b"(" * 100000 + b")" * 100000 + b' "/" INBOX\r\n')
            self.ok(tag)
        elif sc == "long-line":
            chunk = b"A" * (1 << 20)
            self.send(b'* LIST () "/" ')
            for _ in range(64):
                self.send(chunk)
            time.sleep(0.5)
            return False
        else:
            self.send(b'* %s (\\HasNoChildren) "/" INBOX\r\n' % cmd.encode())
            self.ok(tag)
        return True

    def size_of(self, uid):
        real = len(MESSAGES[uid])
        sc = self.server.scenario
        if uid % 2 == 0 and sc == "size-bigger":
            return real + 100
        if uid % 2 == 0 and sc == "size-smaller":
            return real - 100
        return real

    def do_fetch(self, tag, by_uid, arg):
        sc = self.server.scenario
        spec, _, items = arg.partition(" ")
        uids = sorted(MESSAGES)
        if by_uid:
            chosen = [u for u in uids if u in parse_set(spec, max(uids))]
        else:
            chosen = [uids[i - 1] for i in sorted(parse_set(spec, len(uids))) if 1 <= i <= len(uids)]
        items = fetch_items(items)
        # Body bytes, not headers and not a size probe (<off.2> or shorter): the scenarios
        # below break reading a file, not listing a folder.
        wants_body = any(m.group(1) and (m.group(2) or "").upper() not in ("HEADER",) and
                         not (m.group(2) or "").upper().startswith("HEADER.FIELDS") and
                         not (m.group(4) is not None and int(m.group(4)) <= 2) for m in items)
        if wants_body:
            if sc == "stall-fetch":
                self.stall()
                return False
            if sc == "bye-fetch":
                self.send(b"* BYE server shutting down\r\n")
                return False
            if sc == "huge-literal-fetch":
                self.send(b"* 1 FETCH (UID %d BODY[] {%s}\r\nFrom: x\r\n" % (chosen[0], HUGE.encode()))
                time.sleep(0.5)
                return False
        if sc == "deep-nesting-fetch":
            self.send(b"* 1 FETCH (UID 1 ENVELOPE " + b"(" * 100000 + b")" * 100000 + b")\r\n")
            self.ok(tag)
            return True
        for uid in chosen:
            seq = uids.index(uid) + 1
            raw = MESSAGES[uid]
            out = [b"UID %d" % uid]
            for m in items:
                name = m.group(0).upper()
                if m.group(1):
                    kind, section = m.group(1).upper(), m.group(2).upper()
                    if not kind.endswith(".PEEK") and section not in ("HEADER",) and \
                            not section.startswith("HEADER.FIELDS"):
                        self.log("FORBIDDEN %s" % name)
                    head, _, text = raw.partition(b"\r\n\r\n")
                    if section == "":
                        data = raw
                    elif section.startswith("HEADER.FIELDS"):
                        want = set(re.findall(r"[A-Z0-9-]+", section[len("HEADER.FIELDS"):].replace(".NOT", "")))
                        keep = [l for l in re.split(rb"\r\n(?![ \t])", head)
                                if (l.split(b":", 1)[0].strip().upper().decode() in want) !=
                                section.startswith("HEADER.FIELDS.NOT")]
                        data = b"".join(l + b"\r\n" for l in keep) + b"\r\n"
                    elif section == "HEADER":
                        data = head + b"\r\n\r\n"
                    elif section in ("TEXT", "1"):
                        data = text
                    else:
                        data = b""
                    label = b"BODY[" + section.encode() + b"]"
                    if m.group(3) is not None:
                        off, ln = int(m.group(3)), int(m.group(4))
                        data = data[off:off + ln]
                        label += b"<%d>" % off
                    out.append(label + b" {%d}\r\n" % len(data) + data)
                elif name == "UID":
                    continue
                elif name == "FLAGS":
                    out.append(b"FLAGS ()")
                elif name == "INTERNALDATE":
                    out.append(b'INTERNALDATE "26-Nov-2025 10:42:00 +0000"')
                elif name == "RFC822.SIZE":
                    if sc == "bad-numbers":
                        out.append(b"RFC822.SIZE " + (b"-5" if uid % 2 else b"9" * 30))
                    else:
                        out.append(b"RFC822.SIZE %d" % self.size_of(uid))
                elif name == "ENVELOPE":
                    out.append(b"ENVELOPE " + envelope(raw))
                elif name == "RFC822.HEADER":
                    head = raw.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
                    out.append(b"RFC822.HEADER {%d}\r\n" % len(head) + head)
                elif name in ("RFC822", "RFC822.TEXT"):
                    self.log("FORBIDDEN %s" % name)
                    out.append(name.encode() + b" {%d}\r\n" % len(raw) + raw)
                elif name in ("BODY", "BODYSTRUCTURE"):
                    out.append(name.encode() + b' ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" %d %d)'
                               % (len(raw), raw.count(b"\n")))
                elif name == "MODSEQ":
                    out.append(b"MODSEQ (1)")
            self.send(b"* %d FETCH (" % seq + b" ".join(out) + b")\r\n")
        self.ok(tag)
        return True


def dump(directory):
    for uid, raw in MESSAGES.items():
        with open(os.path.join(directory, "%d.eml" % uid), "wb") as fh:
            fh.write(raw)


def main():
    return fakebase.serve(__doc__, SCENARIOS, Handler, "imap", dump)


if __name__ == "__main__":
    sys.exit(main())
