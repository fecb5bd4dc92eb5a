#!/usr/bin/env python3
"""Small misbehaving peers for the probes' tests.
  peers.py http200 ADDR PORT   an HTTP server that answers 200, with a long backlog
  peers.py http500 ADDR PORT   an HTTP server that answers 500 to everything
  peers.py smtp421 ADDR PORT   an SMTP server that greets with 421 and hangs up
  peers.py silent  ADDR PORT   accepts TCP connections and never says a word
  peers.py hangup  ADDR PORT   accepts TCP connections and closes them at once
  peers.py http103 ADDR PORT   an HTTP server that sends 103 Early Hints, then 200
  peers.py httplong ADDR PORT  an HTTP 200 with a header line of 6 KiB (a big cookie)
  peers.py smtphelo ADDR PORT  an SMTP server that refuses EHLO (502) and takes HELO
  peers.py dnsdrop ADDR PORT   a UDP socket that reads DNS queries and drops them
"""
import http.server
import socket
import socketserver
import sys
import threading


def http_status(addr, port, status):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    class S(http.server.ThreadingHTTPServer):
        request_queue_size = 1024

    S((addr, port), H).serve_forever()


def tcp_server(addr, port, handle):
    class H(socketserver.BaseRequestHandler):
        def handle(self):
            handle(self.request)

    class S(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = 1024

    S((addr, port), H).serve_forever()


def smtp421(conn):
    conn.sendall(b"421 rr-pr.test Service not available, closing channel\r\n")


def hangup(conn):
    pass


def http103(conn):
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                 b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def httplong(conn):
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 200 OK\r\nSet-Cookie: c=" + b"x" * 6144 + b"\r\nContent-Length: 0\r\n\r\n")


def smtphelo(conn):
    f = conn.makefile("rwb")
    f.write(b"220 rr-pr.test old ESMTP\r\n")
    f.flush()
    for line in f:
        verb = line.strip().upper()[:4]
        if verb == b"EHLO":
            f.write(b"502 5.5.1 EHLO not implemented\r\n")
        elif verb == b"QUIT":
            f.write(b"221 bye\r\n")
            f.flush()
            return
        else:
            f.write(b"250 ok\r\n")
        f.flush()


def silent(conn):
    threading.Event().wait(600)


def dnsdrop(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        s.recvfrom(4096)


mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "http200":
    http_status(addr, port, 200)
elif mode == "http500":
    http_status(addr, port, 500)
elif mode == "smtp421":
    tcp_server(addr, port, smtp421)
elif mode in ("hangup", "http103", "httplong", "smtphelo"):
    tcp_server(addr, port, globals()[mode])
elif mode == "silent":
    tcp_server(addr, port, silent)
elif mode == "dnsdrop":
    dnsdrop(addr, port)
else:
    sys.exit("unknown mode " + mode)
