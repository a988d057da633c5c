#!/usr/bin/env python3
"""Strict DER check of certificates and requests (SPEC section 4: every certificate popgate
writes or mints is valid DER).

Reads PEM (certificates and/or certificate requests) or a single DER certificate on stdin,
parses each with Python `cryptography` (rust-asn1: rejects BER leniencies such as an
encoded DEFAULT, e.g. `cA FALSE` in BasicConstraints) and decodes every extension.
Prints one line per object: `ok KIND SUBJECT`, or `FAIL KIND ERROR` and exits 1.
"""
import re
import sys

from cryptography import x509


def check(kind, load, data):
    try:
        obj = load(data)
        for extension in obj.extensions:
            _ = extension.value
        print(f"ok {kind} {obj.subject.rfc4514_string()}")
        return True
    except Exception as err:  # every parse failure is the finding
        print(f"FAIL {kind} {err}")
        return False


def main():
    data = sys.stdin.buffer.read()
    blocks = re.findall(
        rb"-----BEGIN ([A-Z ]+)-----\r?\n.*?-----END \1-----", data, re.DOTALL
    )
    ok = True
    count = 0
    if not blocks:
        count = 1
        ok = check("certificate", x509.load_der_x509_certificate, data)
    for match in re.finditer(
        rb"-----BEGIN ([A-Z ]+)-----\r?\n.*?-----END \1-----\r?\n?", data, re.DOTALL
    ):
        label, pem = match.group(1), match.group(0)
        if label == b"CERTIFICATE":
            count += 1
            ok &= check("certificate", x509.load_pem_x509_certificate, pem)
        elif label == b"CERTIFICATE REQUEST":
            count += 1
            ok &= check("request", x509.load_pem_x509_csr, pem)
    if count == 0:
        print("FAIL none no certificate found")
        ok = False
    sys.exit(0 if ok else 1)


main()
