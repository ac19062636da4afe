"""A real SMTP server for the alerts tests (aiosmtpd).

Usage: python3 smtp_sink.py --port P --dir D [--auth USER:PASSWORD]
                            [--starttls CERT:KEY | --tls CERT:KEY]

--starttls: the server offers STARTTLS and refuses mail until the client has used it;
--tls: TLS from the first byte (SMTPS). CERT and KEY are PEM files.

Each accepted message is written to D as N.eml (raw) and N.json (subject, message_id, from, to,
and the decoded text of every text/* part by content type, and the TLS version the message came
over, or null). Prints READY once listening.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
import warnings
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        raw = envelope.original_content or envelope.content
        base = os.path.join(self.folder, str(self.count))
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        parts = {}
        for part in msg.walk():
            if part.get_content_maintype() == "text":
                parts[part.get_content_type()] = part.get_content()
        tls = server.transport.get_extra_info("ssl_object")
        info = {
            "tls": tls.version() if tls is not None else None,
            "subject": msg["subject"],
            "message_id": msg["message-id"],
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "content_type": msg.get_content_type(),
            "parts": parts,
            "auth": session.authenticated,
        }
        with open(base + ".eml.tmp", "wb") as f:
            f.write(raw)
        os.replace(base + ".eml.tmp", base + ".eml")
        with open(base + ".json.tmp", "w") as f:
            json.dump(info, f)
        os.replace(base + ".json.tmp", base + ".json")
        return "250 Message accepted for delivery"


def main():
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--auth")
    ap.add_argument("--starttls")
    ap.add_argument("--tls")
    a = ap.parse_args()

    kwargs = {}
    if a.auth:
        user, password = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok, handled=False)

        kwargs = dict(authenticator=authenticator, auth_require_tls=False, auth_required=True)

    def context(spec):
        cert, key = spec.split(":", 1)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        return ctx

    if a.starttls:
        kwargs.update(tls_context=context(a.starttls), require_starttls=True)
    if a.tls:
        kwargs.update(ssl_context=context(a.tls))
    controller = Controller(Sink(a.dir), hostname="127.0.0.1", port=a.port, **kwargs)
    controller.start()
    print("READY", flush=True)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    try:
        loop.run_until_complete(stop.wait())
    finally:
        controller.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
