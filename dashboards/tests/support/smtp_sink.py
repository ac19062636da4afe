"""A real SMTP server for the report-mail tests (aiosmtpd).

usage: smtp_sink.py PORT OUT_DIR [USER PASSWORD]

Listens on 127.0.0.1:PORT. Every message received is written to OUT_DIR as:
  msg-N.eml         the message exactly as received
  msg-N.json        envelope and what the standard library's email parser found in it:
                    {"mail_from", "rcpt_tos", "auth_login", "subject", "parts": [{"content_type",
                     "filename", "file"}]}; each non-multipart part is decoded to the file "file"
                    (transfer encoding undone; text parts as UTF-8)
With USER and PASSWORD the server requires AUTH (PLAIN/LOGIN, allowed without TLS for the test)
and accepts only those credentials. Prints "READY" on stdout once it accepts connections.
With SMTP_SINK_TLS=starttls or tls and SMTP_SINK_CERT / SMTP_SINK_KEY (PEM files) in the
environment, the server requires STARTTLS before mail, or speaks TLS from the first byte; each
summary then also says "tls": the TLS version the message came over (null without TLS).
"""

import asyncio
import json
import os
import ssl
import sys
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
        login = getattr(session, "auth_data", None) if getattr(session, "authenticated", False) else None
        tls = server.transport.get_extra_info("ssl_object")
        summary = {
            "tls": tls.version() if tls is not None else None,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_login": login.decode() if isinstance(login, bytes) else login,
            "subject": str(msg["subject"]),
            "parts": parts,
        }
        # The .eml first, the .json last: a test that sees the .json sees a complete message.
        with open(stem + ".eml", "wb") as f:
            f.write(raw)
        tmp = stem + ".json.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(summary, f, ensure_ascii=False)
        os.rename(tmp, stem + ".json")
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


async def main():
    port = int(sys.argv[1])
    out_dir = sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    sink = Sink(out_dir)
    kwargs = {}
    if len(sys.argv) >= 5:
        kwargs = dict(
            authenticator=Authenticator(sys.argv[3], sys.argv[4]),
            auth_required=True,
            auth_require_tls=False,
        )
    mode = os.environ.get("SMTP_SINK_TLS")
    wrap = None
    if mode:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(os.environ["SMTP_SINK_CERT"], os.environ["SMTP_SINK_KEY"])
        if mode == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True)
        else:
            wrap = ctx
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="sink.test", data_size_limit=64 * 1024 * 1024, **kwargs),
        host="127.0.0.1",
        port=port,
        ssl=wrap,
    )
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
