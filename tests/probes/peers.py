#!/usr/bin/env python3
"""Small misbehaving peers for the probes' tests.
  peers.py http500 ADDR PORT   an HTTP server that answers 500 to everything
  peers.py smtp421 ADDR PORT   an SMTP server that greets with 421 and hangs up
  peers.py silent  ADDR PORT   accepts TCP connections and never says a word
  peers.py dnsdrop ADDR PORT   a UDP socket that reads DNS queries and drops them
"""
import http.server
import socket
import socketserver
import sys
import threading


def http500(addr, port):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    http.server.ThreadingHTTPServer((addr, port), H).serve_forever()


def tcp_server(addr, port, handle):
    class H(socketserver.BaseRequestHandler):
        def handle(self):
            handle(self.request)

    class S(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    S((addr, port), H).serve_forever()


def smtp421(conn):
    conn.sendall(b"421 rr-pr.test Service not available, closing channel\r\n")


def silent(conn):
    threading.Event().wait(600)


def dnsdrop(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        s.recvfrom(4096)


mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "http500":
    http500(addr, port)
elif mode == "smtp421":
    tcp_server(addr, port, smtp421)
elif mode == "silent":
    tcp_server(addr, port, silent)
elif mode == "dnsdrop":
    dnsdrop(addr, port)
else:
    sys.exit("unknown mode " + mode)
