#!/usr/bin/env python3
"""A real SMTP server for the alert tests, on 127.0.0.1 only (aiosmtpd).

Usage: smtp-server.py PORT CERT KEY USER PASSWORD OUTDIR

It offers STARTTLS with CERT/KEY, refuses mail before STARTTLS and before AUTH with USER and
PASSWORD, and writes each message it accepts to OUTDIR/NNN.eml. It prints "ready" when it
listens and runs until killed.
"""
import os
import signal
import ssl
import sys
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, user, password, outdir = sys.argv[1:7]
Path(outdir).mkdir(parents=True, exist_ok=True)


class Save:
    async def handle_DATA(self, server, session, envelope):
        n = len(os.listdir(outdir))
        Path(outdir, f"{n:03}.eml").write_bytes(envelope.original_content)
        return "250 Message accepted"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == user.encode()
        and auth_data.password == password.encode()
    )
    return AuthResult(success=ok)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(
    Save(),
    hostname="127.0.0.1",
    port=int(port),
    tls_context=context,
    require_starttls=True,
    authenticator=authenticate,
    auth_required=True,
    auth_require_tls=True,
)
controller.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
controller.stop()
