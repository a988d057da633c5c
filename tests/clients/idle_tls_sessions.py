#!/usr/bin/env python3
"""Opens N implicit-TLS POP3 sessions, logs each in, and keeps them all open and idle.

usage: idle_tls_sessions.py N HOST PORT CAFILE USER PASS [RETR]

Prints "READY <n>" once every session is logged in (with a message number RETR: and has
downloaded that message, so the session idles after a download, as a client that keeps its
connection does), then
waits until stdin closes (the benchmark measures popgate meanwhile) and closes the sessions
without QUIT.
"""
import socket
import ssl
import sys


def expect_ok(f, what):
    line = f.readline()
    if not line.startswith(b"+OK"):
        raise SystemExit(f"{what}: {line!r}")


def main():
    n, host, port, cafile, user, password = sys.argv[1:7]
    retr = int(sys.argv[7]) if len(sys.argv) > 7 else None
    context = ssl.create_default_context(cafile=cafile)
    sessions = []
    for i in range(int(n)):
        raw = socket.create_connection((host, int(port)), timeout=60)
        tls = context.wrap_socket(raw, server_hostname=host)
        f = tls.makefile("rb")
        expect_ok(f, f"greeting {i}")
        tls.sendall(f"USER {user}\r\n".encode())
        expect_ok(f, f"USER {i}")
        tls.sendall(f"PASS {password}\r\n".encode())
        expect_ok(f, f"PASS {i}")
        if retr is not None:
            tls.sendall(f"RETR {retr}\r\n".encode())
            expect_ok(f, f"RETR {i}")
            while f.readline() not in (b".\r\n", b""):
                pass
        sessions.append((tls, f))
    print(f"READY {len(sessions)}", flush=True)
    sys.stdin.read()
    for tls, _ in sessions:
        tls.close()


if __name__ == "__main__":
    main()
