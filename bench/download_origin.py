#!/usr/bin/env python3
"""A loopback origin for bench/download.sh: big bodies, sized or chunked.

    python3 bench/download_origin.py PORT

GET /sized/N          N bytes with Content-Length
GET /chunked/C/N      N bytes with Transfer-Encoding: chunked, chunks of C bytes
                      (the last one shorter when C does not divide N)

The body bytes are 'x'. Each reply is sent from a prebuilt block of framed
chunks (about 4 MiB), so the origin spends its time in the kernel's copy,
the same for every client. Keep-alive: one thread per connection, requests
answered in order until the client closes. Loopback only.
"""

import socket
import sys
import threading

BLOCK = 4 * 1024 * 1024


def framed(chunk, n):
    """The chunked framing of n bytes in chunks of `chunk`, as a list of
    (bytes, count) pairs: a prebuilt block sent `count` times, then the rest."""
    piece = b"%x\r\n" % chunk + b"x" * chunk + b"\r\n"
    per_block = max(1, BLOCK // len(piece))
    full, last = divmod(n, chunk)
    parts = []
    blocks, rest = divmod(full, per_block)
    if blocks:
        parts.append((piece * per_block, blocks))
    if rest:
        parts.append((piece * rest, 1))
    tail = b""
    if last:
        tail += b"%x\r\n" % last + b"x" * last + b"\r\n"
    parts.append((tail + b"0\r\n\r\n", 1))
    return parts


def sized(n):
    block = b"x" * BLOCK
    blocks, rest = divmod(n, BLOCK)
    return [(block, blocks), (b"x" * rest, 1)]


def reply(path):
    parts = path.strip("/").split("/")
    try:
        if parts[0] == "sized" and len(parts) == 2:
            n = int(parts[1])
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n
            return head, sized(n)
        if parts[0] == "chunked" and len(parts) == 3:
            chunk, n = int(parts[1]), int(parts[2])
            if chunk > 0:
                head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                return head, framed(chunk, n)
    except ValueError:
        pass
    return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", []


def serve(conn):
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(16384)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            path = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
            first, parts = reply(path)
            try:
                conn.sendall(first)
                for block, count in parts:
                    for _ in range(count):
                        conn.sendall(block)
            except OSError:
                return


def main():
    port = int(sys.argv[1])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
