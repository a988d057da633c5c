#!/usr/bin/env python3
"""Times RETRs of consecutive messages in one POP3S session, as Python's poplib makes them.

usage: poplib_retr_timed.py HOST PORT USER PASS CAFILE FIRST COUNT EXPECTED

Logs in, then RETRs messages FIRST..FIRST+COUNT-1 one after the other (poplib waits for each
answer before it sends the next command, as mail clients do) and prints the seconds those
RETRs took. The messages, each line written back with CRLF, must equal the bytes of the
file EXPECTED, or the script exits with status 1.
"""
import poplib
import ssl
import sys
import time


def main():
    host, port, user, password, cafile, first, count, expected = sys.argv[1:9]
    first, count = int(first), int(count)
    poplib._MAXLINE = 1 << 20
    context = ssl.create_default_context(cafile=cafile)
    client = poplib.POP3_SSL(host, int(port), context=context, timeout=60)
    client.user(user)
    client.pass_(password)
    got = []
    started = time.perf_counter()
    for n in range(first, first + count):
        got.append(client.retr(n)[1])
    elapsed = time.perf_counter() - started
    client.quit()
    with open(expected, "rb") as f:
        want = f.read()
    if b"".join(line + b"\r\n" for lines in got for line in lines) != want:
        print("the messages differ from EXPECTED", file=sys.stderr)
        sys.exit(1)
    print(f"{elapsed:.6f}")


if __name__ == "__main__":
    main()
