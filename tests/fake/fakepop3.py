#!/usr/bin/env python3
"""A scripted POP3 server for what a real Dovecot cannot be made to do: no STLS, a refused STLS,
bytes injected after the STLS answer, a server that announces EXPIRE 0. In memory; it accepts
DELE (and logs it) so that tests can prove that mailfs never sends it.

  fakepop3.py --scenario NAME --port-file F --log F [--tls] [--cert C --key K]
  fakepop3.py --dump DIR      write the messages as DIR/<uidl>.eml (what a reader must see)

Listens on 127.0.0.1 (port 0 = any free port, written to --port-file once listening). Every line
a client sends is appended to --log as "<conn> <p|t> <line>" (p = sent in plaintext, t = inside
TLS), so tests can assert what was (not) sent, and how. User "alice", password "secret".

Scenarios (see SCENARIOS): normal, nostls, stls-no, stls-inject, expire0, no-apop,
stall-greeting, stall-read.
"""
import base64
import os
import ssl
import sys

import fakebase

SCENARIOS = {
    "normal": "a well-behaved server: STLS, USER, SASL PLAIN, UIDL, TOP, PIPELINING, APOP",
    "nostls": "no STLS in CAPA (and -ERR to STLS); USER/PASS accepted in plaintext",
    "stls-no": "STLS advertised but answered with -ERR",
    "stls-inject": "plaintext bytes follow the STLS +OK in the same packet (like CVE-2020-14954)",
    "expire0": "CAPA announces EXPIRE 0 (the server deletes what a session downloaded)",
    "no-apop": "a greeting without an APOP timestamp",
    "stall-greeting": "accepts the connection and never says anything",
    "stall-read": "never answers a TOP that asks for more than the header (a body read)",
}

USER, PASSWORD = "alice", "secret"
APOP_STAMP = b"<4711.1700000000@fake.example>"


def make_messages():
    """(uidl, octets): a plain one, one with lines that need dot-stuffing, one without a final
    line break. LIST reports each one's own size."""
    def msg(n, frm, subject, date, body):
        head = ("From: %s\r\nTo: alice@example.org\r\nSubject: %s\r\nDate: %s\r\n"
                "Message-ID: <fakepop-%d@example.net>\r\n\r\n" % (frm, subject, date, n))
        return head.encode() + body
    return [
        ("uidl-one", msg(1, "Alice Smith <alice@example.org>", "Hello over POP3",
                         "Wed, 26 Nov 2025 10:42:00 +0000", b"Just a short note.\r\n")),
        ("uidl-two", msg(2, "Bob <bob@example.net>", "Dots at the start of lines",
                         "Tue, 25 Nov 2025 09:00:00 +0000",
                         b"Line one\r\n.\r\n..two dots\r\n.leading dot\r\nlast\r\n")),
        ("uidl-three", msg(3, "=?UTF-8?Q?Ren=C3=A9e?= <renee@example.fr>",
                           "=?UTF-8?Q?Caf=C3=A9_=E2=98=95?=", "Mon, 24 Nov 2025 08:00:00 +0100",
                           b"Un caf\xc3\xa9?\r\nNo line break at the end")),
    ]


MESSAGES = make_messages()


def stuffed(raw):
    """The octets as sent in a multi-line answer: dot-stuffed, CRLF added only if missing."""
    lines = raw.split(b"\r\n")
    if lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)


class Handler(fakebase.LineHandler):
    def setup(self):
        super().setup()
        self.authed = False
        self.user = None

    def log_tag(self):
        return "%s %s" % (self.cid, "t" if self.tls else "p")

    def capa(self):
        sc = self.server.scenario
        c = [b"CAPA", b"TOP", b"UIDL", b"USER", b"RESP-CODES", b"PIPELINING", b"SASL PLAIN"]
        if not self.tls and sc != "nostls":
            c.append(b"STLS")
        if sc == "expire0":
            c.append(b"EXPIRE 0")
        return c

    def handle(self):
        sc = self.server.scenario
        self.log("CONNECT")
        try:
            if self.tls:
                self.sock = self.server.ctx.wrap_socket(self.sock, server_side=True)
            if sc == "stall-greeting":
                return self.stall()
            greet = b"+OK fake POP3 ready"
            if sc != "no-apop":
                greet += b" " + APOP_STAMP
            self.send(greet + b"\r\n")
            while True:
                line = self.readline()
                if line is None:
                    self.log("EOF")
                    return
                text = line.decode("utf-8", "replace")
                self.log(text)
                cmd, _, arg = text.partition(" ")
                if not self.dispatch(cmd.upper(), arg):
                    return
        except (ConnectionError, ssl.SSLError, OSError) as e:
            self.log("CLOSED %s" % e.__class__.__name__)

    def stall(self):
        self.log("STALL")
        while not self.server.stopping.wait(1):
            pass

    def multi(self, first, body):
        self.send(b"+OK " + first + b"\r\n" + body + b".\r\n")

    def msgno(self, arg):
        try:
            n = int(arg.split()[0])
        except (ValueError, IndexError):
            return None
        return n if 1 <= n <= len(MESSAGES) else None

    def dispatch(self, cmd, arg):
        sc = self.server.scenario
        if cmd == "CAPA":
            self.multi(b"capabilities", b"".join(c + b"\r\n" for c in self.capa()))
        elif cmd == "STLS":
            if self.tls or sc == "nostls" or self.server.ctx is None:
                self.send(b"-ERR no STLS here\r\n")
            elif sc == "stls-no":
                self.send(b"-ERR [SYS/TEMP] TLS is not available today\r\n")
            else:
                if self.rbuf:
                    self.log("CLIENT-PIPELINED %r" % self.rbuf[:40])
                if sc == "stls-inject":
                    self.send(b"+OK begin TLS\r\n+OK injected before TLS\r\n")
                else:
                    self.send(b"+OK begin TLS\r\n")
                self.sock = self.server.ctx.wrap_socket(self.sock, server_side=True)
                self.tls = True
                self.log("TLS-ESTABLISHED")
        elif cmd == "USER":
            self.user = arg
            self.send(b"+OK\r\n")
        elif cmd == "PASS":
            self.login(self.user == USER and arg == PASSWORD)
        elif cmd == "APOP":
            self.login(False)
        elif cmd == "AUTH":
            mech, _, initial = arg.partition(" ")
            if mech.upper() != "PLAIN":
                self.send(b"-ERR unsupported mechanism\r\n")
                return True
            if not initial:
                self.send(b"+ \r\n")
                initial = (self.readline() or b"").decode()
            try:
                parts = base64.b64decode(initial).split(b"\0")
                good = len(parts) == 3 and parts[1] == USER.encode() and parts[2] == PASSWORD.encode()
            except ValueError:
                good = False
            self.login(good)
        elif cmd == "QUIT":
            self.send(b"+OK bye\r\n")
            return False
        elif cmd == "NOOP" or cmd == "RSET":
            self.send(b"+OK\r\n")
        elif not self.authed:
            self.send(b"-ERR log in first\r\n")
        elif cmd == "STAT":
            self.send(b"+OK %d %d\r\n" % (len(MESSAGES), sum(len(r) for _, r in MESSAGES)))
        elif cmd in ("LIST", "UIDL"):
            def item(i):
                u, raw = MESSAGES[i - 1]
                return b"%d %s" % (i, str(len(raw)).encode() if cmd == "LIST" else u.encode())
            if arg:
                n = self.msgno(arg)
                self.send(b"+OK " + item(n) + b"\r\n" if n else b"-ERR no such message\r\n")
            else:
                self.multi(b"%d messages" % len(MESSAGES),
                           b"".join(item(i) + b"\r\n" for i in range(1, len(MESSAGES) + 1)))
        elif cmd in ("TOP", "RETR"):
            n = self.msgno(arg)
            if not n:
                self.send(b"-ERR no such message\r\n")
                return True
            raw = MESSAGES[n - 1][1]
            if cmd == "TOP":
                try:
                    lines = int(arg.split()[1])
                except (ValueError, IndexError):
                    self.send(b"-ERR TOP needs a line count\r\n")
                    return True
                if sc == "stall-read" and lines > 0:
                    self.stall()
                    return False
                head, sep, body = raw.partition(b"\r\n\r\n")
                body_lines = body.split(b"\r\n")
                if lines < len(body_lines):
                    raw = head + sep + b"".join(l + b"\r\n" for l in body_lines[:lines])
            self.multi(b"%d octets" % len(raw), stuffed(raw))
        elif cmd == "DELE":
            self.send(b"+OK marked (this fake never really deletes)\r\n")
        else:
            self.send(b"-ERR unknown command\r\n")
        return True

    def login(self, good):
        if good and not self.authed:
            self.authed = True
            self.log("AUTH-OK plaintext=%d" % (0 if self.tls else 1))
            self.send(b"+OK logged in\r\n")
        else:
            self.send(b"-ERR [AUTH] authentication failed\r\n")


def dump(directory):
    for uidl, raw in MESSAGES:
        with open(os.path.join(directory, uidl + ".eml"), "wb") as fh:
            fh.write(raw)


def main():
    return fakebase.serve(__doc__, SCENARIOS, Handler, "pop3", dump)


if __name__ == "__main__":
    sys.exit(main())
