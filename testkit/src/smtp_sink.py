"""A real SMTP server for the tests (aiosmtpd), started by auditlake_testkit::smtp::SmtpSink.

usage: smtp_sink.py --dir DIR [--auth USER:PASSWORD] [--starttls CERT:KEY | --tls CERT:KEY]

Listens on a port of 127.0.0.1 the system picks and prints "READY <port>" once it accepts
connections (no port is picked and freed beforehand, so no other process can take it meanwhile).

--auth: AUTH (PLAIN/LOGIN, allowed without TLS for the test) is required, with these credentials.
--starttls: STARTTLS is offered and required before mail; --tls: TLS from the first byte (SMTPS).
CERT and KEY are PEM files.

Every message received is written to DIR as
  msg-N.eml    the message exactly as received
  msg-N.json   {"tls": version or null, "mail_from", "rcpt_tos", "auth_login": login or null,
                "subject", "message_id", "content_type",
                "parts": [{"content_type", "filename", "file"}] (every non-multipart part decoded
                         to the file "file", transfer encoding undone),
                "text": {content type: decoded text} for the text/* parts}
The .json is written last, atomically, and before the server answers 250: a test that sees it sees
a complete message.
"""

import argparse
import asyncio
import json
import logging
import os
import ssl
import warnings
from email import policy
from email.parser import BytesParser

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        stem = os.path.join(self.out_dir, "msg-%d" % self.n)
        raw = envelope.original_content or envelope.content
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        parts = []
        text = {}
        for i, part in enumerate(msg.walk()):
            if part.is_multipart():
                parts.append({"content_type": part.get_content_type(), "filename": None, "file": None})
                continue
            payload = part.get_payload(decode=True) or b""
            fname = "%s.part%d" % (stem, i)
            with open(fname, "wb") as f:
                f.write(payload)
            parts.append({
                "content_type": part.get_content_type(),
                "filename": part.get_filename(),
                "file": fname,
            })
            if part.get_content_maintype() == "text" and part.get_filename() is None:
                text[part.get_content_type()] = part.get_content()
        login = getattr(session, "auth_data", None) if getattr(session, "authenticated", False) else None
        tls = server.transport.get_extra_info("ssl_object")
        summary = {
            "tls": tls.version() if tls is not None else None,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_login": login.decode() if isinstance(login, bytes) else login,
            "subject": str(msg["subject"]),
            "message_id": msg["message-id"],
            "content_type": msg.get_content_type(),
            "parts": parts,
            "text": text,
        }
        with open(stem + ".eml", "wb") as f:
            f.write(raw)
        tmp = stem + ".json.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(summary, f, ensure_ascii=False)
        os.replace(tmp, stem + ".json")
        return "250 OK"


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


def context(spec):
    cert, key = spec.split(":", 1)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def main():
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--auth")
    ap.add_argument("--starttls")
    ap.add_argument("--tls")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    sink = Sink(a.dir)
    kwargs = {}
    if a.auth:
        user, password = a.auth.split(":", 1)
        kwargs.update(
            authenticator=Authenticator(user, password),
            auth_required=True,
            auth_require_tls=False,
        )
    wrap = None
    if a.starttls:
        kwargs.update(tls_context=context(a.starttls), require_starttls=True)
    if a.tls:
        wrap = context(a.tls)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="sink.test", data_size_limit=64 * 1024 * 1024, **kwargs),
        host="127.0.0.1",
        port=0,
        ssl=wrap,
    )
    port = server.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
