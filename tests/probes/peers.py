#!/usr/bin/env python3
"""Small misbehaving peers for the probes' tests.
  peers.py http200 ADDR PORT   an HTTP server that answers 200, with a long backlog
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
elif mode == "silent":
    tcp_server(addr, port, silent)
elif mode == "dnsdrop":
    dnsdrop(addr, port)
else:
    sys.exit("unknown mode " + mode)
