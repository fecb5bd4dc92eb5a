#!/usr/bin/env python3
"""Targets that answer byte by byte (tests/surroundings/test-drip.sh).
usage: drip.py ADDR MODE:PORT...
  http-drip   an HTTP answer, one byte every 200 ms (done after ~20 s)
  http-flood  a header line without end, one byte every 5 ms
  smtp-drip   an SMTP greeting, one byte every 200 ms
  silent      accepts, reads, never writes"""
import socket
import sys
import threading
import time

ANSWERS = {
    "http-drip": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", 0.2),
    "smtp-drip": (b"220 drip.rr-sur.test ESMTP a very slow greeting\r\n", 0.2),
}


def serve(conn, mode):
    conn.settimeout(60)
    try:
        if mode == "silent":
            while conn.recv(4096):
                pass
        elif mode == "http-flood":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
            while True:
                conn.sendall(b"a")
                time.sleep(0.005)
        else:
            data, pause = ANSWERS[mode]
            for i in range(len(data)):
                conn.sendall(data[i:i + 1])
                time.sleep(pause)
            while conn.recv(4096):
                pass
    except OSError:
        pass
    finally:
        conn.close()


def listen(addr, mode, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, mode), daemon=True).start()


addr = sys.argv[1]
for spec in sys.argv[2:]:
    mode, port = spec.split(":")
    threading.Thread(target=listen, args=(addr, mode, int(port)), daemon=True).start()
while True:
    time.sleep(3600)
