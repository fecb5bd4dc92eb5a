#!/usr/bin/env python3
"""TLS and proxy peers for tests/probes/test-tls.sh, all in one process.
  tlspeers.py NAME=MODE,ADDR,PORT[,CERT,KEY] ...
Modes:
  https     an HTTPS server (CERT, KEY) that answers 200 to GET
  http      a plain HTTP server that answers 200 to GET
  smtptls   an SMTP server that offers STARTTLS and upgrades with CERT, KEY
  smtpdrop  an SMTP server that offers STARTTLS, says 220 to it, then hangs up
            (the client's handshake fails)
  proxy     an HTTP forward proxy: absolute-URI GET and CONNECT (to the
            namespace's own servers: the namespace has no other route)
Every request and SMTP command is logged as "NAME PEER: WHAT" on stdout, so
the test can assert what each server really saw.
"""
import http.client
import http.server
import select
import socket
import socketserver
import ssl
import sys
import threading
import urllib.parse

LOCK = threading.Lock()


def log(name, peer, what):
    with LOCK:
        print("%s %s: %s" % (name, peer, what), flush=True)


def tls_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        log(self.rr_name, client_address[0], "error: %s" % sys.exc_info()[1])


def http_handler(name, ctx):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def setup(self):
            # The handshake in the connection's thread, not in accept().
            if ctx:
                self.request = ctx.wrap_socket(self.request, server_side=True)
                log(name, self.client_address[0], "handshake done")
            super().setup()

        def do_GET(self):
            log(name, self.client_address[0], "GET " + self.path)
            body = b"hello from " + name.encode() + b"\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    return H


class Lines:
    """Reads CRLF lines from a socket; made anew after the TLS upgrade."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("ascii", "replace")


def smtp_handler(name, ctx, drop):
    class H(socketserver.BaseRequestHandler):
        def handle(self):
            peer = self.client_address[0]
            sock, tls = self.request, False
            sock.sendall(b"220 wan.rr-tl.test ESMTP test server\r\n")
            lines = Lines(sock)
            while True:
                cmd = lines.line()
                if cmd is None:
                    log(name, peer, "closed by the client")
                    return
                log(name, peer, ("(tls) " if tls else "") + cmd)
                verb = cmd.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    ext = b"" if tls else b"250-STARTTLS\r\n"
                    sock.sendall(b"250-wan.rr-tl.test\r\n" + ext + b"250 8BITMIME\r\n")
                elif verb == "HELO":
                    sock.sendall(b"250 wan.rr-tl.test\r\n")
                elif verb == "STARTTLS" and not tls:
                    sock.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                    if drop:
                        log(name, peer, "hanging up instead of the handshake")
                        return
                    try:
                        sock = ctx.wrap_socket(sock, server_side=True)
                    except (ssl.SSLError, OSError) as e:
                        log(name, peer, "handshake failed: %s" % e)
                        return
                    log(name, peer, "handshake done")
                    tls, lines = True, Lines(sock)
                elif verb == "NOOP":
                    sock.sendall(b"250 2.0.0 OK\r\n")
                elif verb == "QUIT":
                    sock.sendall(b"221 2.0.0 Bye\r\n")
                    return
                else:
                    sock.sendall(b"502 5.5.2 Command not recognized\r\n")

    return H


def relay(a, b):
    """Copies both ways until one side closes."""
    socks = [a, b]
    while True:
        ready, _, _ = select.select(socks, [], [], 30)
        if not ready:
            return
        for s in ready:
            data = s.recv(65536)
            if not data:
                return
            (b if s is a else a).sendall(data)


def proxy_handler(name):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self):
            log(name, self.client_address[0], "GET " + self.path)
            u = urllib.parse.urlsplit(self.path)
            if u.scheme != "http" or not u.hostname:
                self.send_error(400, "absolute http:// URI expected")
                return
            c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=5)
            c.request("GET", (u.path or "/") + ("?" + u.query if u.query else ""))
            r = c.getresponse()
            body = r.read()
            self.send_response(r.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            c.close()

        def do_CONNECT(self):
            log(name, self.client_address[0], "CONNECT " + self.path)
            host, _, port = self.path.rpartition(":")
            try:
                up = socket.create_connection((host.strip("[]"), int(port)), 5)
            except (OSError, ValueError) as e:
                self.send_error(502, "cannot connect: %s" % e)
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            relay(self.connection, up)
            up.close()
            self.close_connection = True

        def log_message(self, *a):
            pass

    return H


def start(spec):
    name, _, rest = spec.partition("=")
    f = rest.split(",")
    mode, addr, port = f[0], f[1], int(f[2])
    ctx = tls_context(f[3], f[4]) if len(f) >= 5 else None
    handlers = {
        "https": lambda: http_handler(name, ctx),
        "http": lambda: http_handler(name, None),
        "smtptls": lambda: smtp_handler(name, ctx, False),
        "smtpdrop": lambda: smtp_handler(name, ctx, True),
        "proxy": lambda: proxy_handler(name),
    }
    if mode not in handlers or (mode in ("https", "smtptls") and not ctx):
        sys.exit("bad listener " + spec)
    s = Server((addr, port), handlers[mode]())
    s.rr_name = name
    threading.Thread(target=s.serve_forever, daemon=True).start()
    log(name, addr, "listening on port %d (%s)" % (port, mode))


for a in sys.argv[1:]:
    start(a)
threading.Event().wait()
