"""What the scripted fake servers (fakeimap.py, fakepop3.py) share: a line-oriented connection
handler with a command log, and the command line that starts a server on loopback, writes its
port to a file and stops cleanly on SIGTERM. The protocols themselves stay in each fake."""
import argparse
import os
import signal
import socketserver
import ssl
import threading


class LineHandler(socketserver.BaseRequestHandler):
    """One client connection: CRLF lines in, bytes out, every event appended to the log."""

    def setup(self):
        srv = self.server
        with srv.lock:
            srv.conns += 1
            self.cid = "c%d" % srv.conns
        self.sock = self.request
        self.rbuf = b""
        self.tls = srv.implicit_tls

    def log_tag(self):
        return self.cid

    def log(self, text):
        with self.server.lock, open(self.server.logpath, "a", encoding="utf-8", errors="replace") as fh:
            fh.write("%s %s\n" % (self.log_tag(), text))

    def send(self, data):
        self.sock.sendall(data)

    def readline(self):
        while b"\r\n" not in self.rbuf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.rbuf += chunk
        line, self.rbuf = self.rbuf.split(b"\r\n", 1)
        return line


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(description, scenarios, handler, proto, dump):
    """Parse the common options and run the server; dump(dir) writes the messages and returns."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="normal", choices=sorted(scenarios))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("--tls", action="store_true", help="implicit TLS (%ss)" % proto)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--dump", metavar="DIR", help="write the messages into DIR as .eml files and exit")
    a = ap.parse_args()
    if a.dump:
        os.makedirs(a.dump, exist_ok=True)
        dump(a.dump)
        return 0
    srv = Server(("127.0.0.1", a.port), handler)
    srv.scenario = a.scenario
    srv.logpath = a.log
    srv.lock = threading.Lock()
    srv.conns = 0
    srv.stopping = threading.Event()
    srv.implicit_tls = a.tls
    srv.ctx = None
    if a.cert:
        srv.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.ctx.load_cert_chain(a.cert, a.key)

    def stop(*_):
        srv.stopping.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write("%d\n" % srv.server_address[1])
        os.rename(tmp, a.port_file)
    srv.serve_forever(poll_interval=0.2)
    return 0
