#!/usr/bin/python3
"""A small real SMTP server for the alert tests, for what smtp-sink cannot do:
answer 451 to the first N messages and 250 afterwards, offer and require
STARTTLS with a given certificate, require AUTH PLAIN/LOGIN with one user.
Each accepted message is written, dot-unstuffed, to DIR/msg-N; the raw DATA
lines as received (still dot-stuffed) go to DIR/raw-N."""
import argparse
import base64
import os
import socketserver
import ssl
import sys
import threading

p = argparse.ArgumentParser()
p.add_argument("--listen", required=True)          # HOST:PORT
p.add_argument("--dir", required=True)
p.add_argument("--fail-first", type=int, default=0)
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("--require-tls", action="store_true")
p.add_argument("--implicit-tls", action="store_true")   # smtps://
p.add_argument("--auth")                           # USER:PASSWORD
p.add_argument("--hold-dot", action="store_true")  # a stalled server: never answer "."
args = p.parse_args()

lock = threading.Lock()
state = {"seen": 0, "stored": 0}
ctx = None
if args.cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)


def log(msg):
    print(msg, flush=True)


class Handler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline(65536)
        if not line:
            raise EOFError
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def handle(self):
        tls = False
        authed = False
        mail_from = None
        rcpts = []
        try:
            if args.implicit_tls:
                sock = ctx.wrap_socket(self.connection, server_side=True)
                self.connection = sock
                self.rfile = sock.makefile("rb")
                self.wfile = sock.makefile("wb")
                tls = True
            self.reply("220 smtp-test-server ESMTP")
            while True:
                line = self.readline()
                cmd = line.split(" ", 1)[0].upper()
                log("C: " + (line if cmd != "AUTH" else "AUTH ..."))
                if cmd in ("EHLO", "HELO"):
                    ext = ["250-smtp-test-server"]
                    if ctx and not tls:
                        ext.append("250-STARTTLS")
                    if args.auth and (tls or not args.require_tls):
                        ext.append("250-AUTH PLAIN LOGIN")
                    ext.append("250 8BITMIME")
                    for e in ext:
                        self.reply(e)
                elif cmd == "STARTTLS" and ctx and not tls:
                    self.reply("220 2.0.0 go ahead")
                    sock = ctx.wrap_socket(self.connection, server_side=True)
                    self.connection = sock
                    self.rfile = sock.makefile("rb")
                    self.wfile = sock.makefile("wb")
                    tls = True
                elif cmd == "AUTH" and args.auth:
                    user, pw = args.auth.split(":", 1)
                    parts = line.split(" ")
                    mech = parts[1].upper() if len(parts) > 1 else ""
                    if mech == "PLAIN":
                        blob = parts[2] if len(parts) > 2 else None
                        if blob is None:
                            self.reply("334 ")
                            blob = self.readline()
                        fields = base64.b64decode(blob).split(b"\0")
                        ok = len(fields) == 3 and fields[1].decode() == user and fields[2].decode() == pw
                    elif mech == "LOGIN":
                        if len(parts) > 2:
                            u = base64.b64decode(parts[2]).decode()
                        else:
                            self.reply("334 VXNlcm5hbWU6")
                            u = base64.b64decode(self.readline()).decode()
                        self.reply("334 UGFzc3dvcmQ6")
                        pwd = base64.b64decode(self.readline()).decode()
                        ok = u == user and pwd == pw
                    else:
                        ok = False
                    if ok:
                        authed = True
                        self.reply("235 2.7.0 Authentication successful")
                    else:
                        self.reply("535 5.7.8 Error: authentication failed")
                elif cmd == "MAIL":
                    if args.require_tls and not tls:
                        self.reply("530 5.7.0 Must issue a STARTTLS command first")
                    elif args.auth and not authed:
                        self.reply("530 5.7.0 Authentication required")
                    else:
                        mail_from = line
                        rcpts = []
                        self.reply("250 2.1.0 Ok")
                elif cmd == "RCPT":
                    if mail_from is None:
                        self.reply("503 5.5.1 need MAIL first")
                    else:
                        rcpts.append(line)
                        self.reply("250 2.1.5 Ok")
                elif cmd == "DATA":
                    if not rcpts:
                        self.reply("503 5.5.1 need RCPT first")
                        continue
                    self.reply("354 End data with <CR><LF>.<CR><LF>")
                    raw = []
                    while True:
                        ln = self.rfile.readline(65536)
                        if not ln:
                            raise EOFError
                        if ln == b".\r\n":
                            break
                        raw.append(ln)
                    if args.hold_dot:
                        log("S: holding the reply to the end of data")
                        while self.rfile.readline(65536):
                            pass
                        raise EOFError
                    with lock:
                        state["seen"] += 1
                        n = state["seen"]
                        fail = n <= args.fail_first
                        if not fail:
                            state["stored"] += 1
                            k = state["stored"]
                    if fail:
                        log("S: 451 for message %d" % n)
                        self.reply("451 4.3.0 Try again later (test)")
                    else:
                        body = b"".join(l[1:] if l.startswith(b".") else l for l in raw)
                        head = "".join("X-Rcpt-Args: %s\r\n" % r.split(":", 1)[1].strip() for r in rcpts)
                        with open(os.path.join(args.dir, "raw-%d" % k), "wb") as f:
                            f.write(b"".join(raw))
                        tmp = os.path.join(args.dir, ".msg-%d" % k)
                        with open(tmp, "wb") as f:
                            f.write(head.encode() + body)
                        os.rename(tmp, os.path.join(args.dir, "msg-%d" % k))
                        self.reply("250 2.0.0 Ok: queued as TEST%d" % k)
                    mail_from = None
                    rcpts = []
                elif cmd == "RSET":
                    mail_from, rcpts = None, []
                    self.reply("250 2.0.0 Ok")
                elif cmd == "NOOP":
                    self.reply("250 2.0.0 Ok")
                elif cmd == "QUIT":
                    self.reply("221 2.0.0 Bye")
                    return
                else:
                    self.reply("502 5.5.2 Error: command not recognized")
        except (EOFError, ConnectionError, ssl.SSLError) as e:
            log("connection ended: %r" % (e,))


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


host, port = args.listen.rsplit(":", 1)
srv = Server((host, int(port)), Handler)
log("listening on %s" % args.listen)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    pass
sys.exit(0)
