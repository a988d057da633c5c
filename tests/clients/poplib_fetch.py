#!/usr/bin/env python3
"""Fetch every message of a POP3 mailbox with Python's poplib (a real client for popgate's tests).

usage: poplib_fetch.py plain|stls|ssl HOST PORT USER PASS CAFILE OUTDIR [user|apop]

Writes message N to OUTDIR/N.eml. poplib hands back lines with the CRLF stripped and the
dot-stuffing undone; each line is written back with CRLF, which restores the exact message
when it ends with CRLF. Prints the message count. CAFILE is ignored in plain mode ("-").
"""
import os
import poplib
import ssl
import sys


def main():
    mode, host, port, user, password, cafile, outdir = sys.argv[1:8]
    auth = sys.argv[8] if len(sys.argv) > 8 else "user"
    poplib._MAXLINE = 1 << 20
    context = None
    if mode != "plain":
        context = ssl.create_default_context(cafile=cafile)
    if mode == "ssl":
        client = poplib.POP3_SSL(host, int(port), context=context, timeout=60)
    else:
        client = poplib.POP3(host, int(port), timeout=60)
        if mode == "stls":
            client.stls(context=context)
    if auth == "apop":
        client.apop(user, password)
    else:
        client.user(user)
        client.pass_(password)
    count, _size = client.stat()
    for n in range(1, count + 1):
        _resp, lines, _octets = client.retr(n)
        with open(os.path.join(outdir, f"{n}.eml"), "wb") as out:
            out.write(b"".join(line + b"\r\n" for line in lines))
    client.quit()
    print(count)


if __name__ == "__main__":
    main()
