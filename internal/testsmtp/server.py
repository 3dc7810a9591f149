# A real SMTP server for cpan-tlog's tests: aiosmtpd under Debian's
# /usr/bin/python3, started by testsmtp.Start (server.go), which embeds
# this file. Configuration comes as JSON in argv[1]; the bound port is
# printed as "READY <port>" once the server accepts connections.
import asyncio
import email
import email.policy
import json
import logging
import os
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

cfg = json.load(open(sys.argv[1]))
outdir = cfg["dir"]
reject = set(cfg.get("reject") or [])
defer = set(cfg.get("defer") or [])
# address -> seconds the reply to the first message to it is held
hold = dict(cfg.get("hold") or {})
lock = threading.Lock()
seq = [0]


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


# Every command line a client sends is logged by aiosmtpd at INFO on
# "mail.log" as '%r >> %r' (with AUTH arguments already masked). The tests
# read the lines back to tell, for one, that no AUTH was sent in clear.
class CommandRecorder(logging.Handler):
    def __init__(self, path):
        super().__init__(logging.INFO)
        self.f = open(path, "a", buffering=1)

    def emit(self, record):
        if not isinstance(record.args, tuple) or len(record.args) != 2:
            return
        if not str(record.msg).endswith(">> %r"):
            return
        line = record.args[1]
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        with lock:
            self.f.write(line.replace("\n", " ") + "\n")


mail_log = logging.getLogger("mail.log")
mail_log.setLevel(logging.INFO)
mail_log.addHandler(CommandRecorder(os.path.join(cfg["commands"])))
mail_log.propagate = False


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in reject:
            return "550 5.1.1 <%s>: no such user" % address
        if address in defer:
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with lock:
            seq[0] += 1
            n = seq[0]
        base = os.path.join(outdir, "%06d" % n)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
        }
        write_atomic(base + ".eml", envelope.original_content)
        # The .json appears last: a message is complete once it exists.
        write_atomic(base + ".json", json.dumps(meta).encode())
        held = [a for a in envelope.rcpt_tos
                if a in hold and hold[a]["marker"] in message_text(envelope.original_content)]
        if held:
            # Once per address: the message is stored, and the client
            # waits for the reply (a test kills it meanwhile).
            secs = max(hold.pop(a)["seconds"] for a in held)
            await asyncio.sleep(secs)
        return "250 Message accepted for delivery"


def message_text(content):
    # The raw message, its subject and its decoded text: a marker is
    # found whatever the transfer encoding (quoted-printable may split a
    # word across a soft line break).
    text = content.decode("utf-8", "replace")
    try:
        msg = email.message_from_bytes(content, policy=email.policy.default)
        text += "\n" + str(msg.get("subject", ""))
        body = msg.get_body(("plain",))
        if body is not None:
            text += "\n" + body.get_content()
    except Exception:
        pass
    return text


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == cfg["username"].encode()
        and auth_data.password == cfg["password"].encode()
    )
    # handled=False: aiosmtpd then answers the failure itself (535); with
    # the default handled=True it would answer nothing at all.
    return AuthResult(success=ok, handled=False)


class BoundController(Controller):
    # Listens on a socket bound here to port 0, so no two tests race for
    # a port number.
    def __init__(self, sock, *args, **kwargs):
        self._sock = sock
        super().__init__(*args, hostname="127.0.0.1", port=sock.getsockname()[1], **kwargs)

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
sock.listen(64)

kwargs = dict(authenticator=authenticator, enable_SMTPUTF8=True, timeout=30)
if cfg.get("no_plain"):
    kwargs.update(auth_exclude_mechanism=["PLAIN"])
if cfg.get("tls", True):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cfg["cert"], cfg["key"])
    kwargs.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
else:
    # No STARTTLS, and AUTH offered and accepted in clear: a client that
    # would send its password over this connection gets to do it, and the
    # recorded commands show it.
    kwargs.update(auth_require_tls=False)

controller = BoundController(sock, Handler(), **kwargs)
controller.start()
print("READY %d" % sock.getsockname()[1], flush=True)
# Runs until the test closes stdin (or kills the process).
sys.stdin.read()
controller.stop()
