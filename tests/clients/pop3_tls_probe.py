#!/usr/bin/env python3
"""A scripted POP3 client over TLS (implicit or STLS) for popgate's TLS tests.

usage: pop3_tls_probe.py ssl|stls HOST PORT CAFILE MAXVERSION [COMMAND...]

MAXVERSION is "default" or "1.1" (a client that cannot go above TLS 1.1: popgate must refuse
it). After the handshake, each COMMAND is sent and its response read (multi-line for CAPA,
LIST, UIDL, and a bare AUTH). Prints one JSON object: {"greeting", "stls", "handshake":
"ok" | error text, "tls_version", "peer_cert_pem", "responses": [...]}; the exit status is 0
whenever the script itself worked, whatever popgate did.
"""
import json
import socket
import ssl
import sys

MULTILINE = {"CAPA", "LIST", "UIDL"}


def read_line(f):
    return f.readline().decode("latin-1")


def read_response(f, command):
    first = read_line(f)
    verb = command.split(" ")[0].upper()
    multiline = verb in MULTILINE and " " not in command.strip() or command.strip().upper() == "AUTH"
    if not first.startswith("+OK") or not multiline:
        return first
    lines = [first]
    while True:
        line = read_line(f)
        lines.append(line)
        if line in (".\r\n", "") or line == ".\n":
            break
    return "".join(lines)


def main():
    mode, host, port, cafile, maxversion = sys.argv[1:6]
    commands = sys.argv[6:]
    out = {"greeting": None, "stls": None, "handshake": None, "tls_version": None,
           "peer_cert_pem": None, "responses": []}
    context = ssl.create_default_context(cafile=cafile)
    if maxversion == "1.1":
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    raw = socket.create_connection((host, int(port)), timeout=30)
    if mode == "stls":
        f = raw.makefile("rb")
        out["greeting"] = read_line(f)
        raw.sendall(b"STLS\r\n")
        out["stls"] = read_line(f)
        if not out["stls"].startswith("+OK"):
            print(json.dumps(out))
            return
    try:
        tls = context.wrap_socket(raw, server_hostname=host)
    except (ssl.SSLError, OSError) as err:
        out["handshake"] = f"{type(err).__name__}: {err}"
        print(json.dumps(out))
        return
    out["handshake"] = "ok"
    out["tls_version"] = tls.version()
    der = tls.getpeercert(binary_form=True)
    out["peer_cert_pem"] = ssl.DER_cert_to_PEM_cert(der) if der else None
    f = tls.makefile("rb")
    if mode == "ssl":
        out["greeting"] = read_line(f)
    for command in commands:
        try:
            tls.sendall(command.encode("latin-1") + b"\r\n")
            out["responses"].append(read_response(f, command))
        except OSError as err:
            out["responses"].append(f"error: {err}")
            break
    print(json.dumps(out))


if __name__ == "__main__":
    main()
