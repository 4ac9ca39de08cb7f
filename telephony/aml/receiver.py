"""The HTTPS receiver: ``POST /aml/v1`` (the TS 103 625 form) and ``POST /aml/v1/sms`` (an
SMS gateway relaying the AML SMS), on ``aml.port``, always over TLS.

An authenticated, not rate-limited message is stored (usable or not, with its raw text) and
answered ``200 OK``, as TS 103 625 and Android ELS expect of the PSAP endpoint whatever
became of the content (a sender must not resend a fix we could not use); the body names
what we made of it. 401/403 for senders we do not know, 429 over the sender's rate, 503
when the database cannot take the fix (the sender may retry then). What happens next
(matching, the card, the audit event) is the ``sink``'s, off the request path.
"""

from __future__ import annotations

import base64
import binascii
import json
import shutil
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import structlog
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from uvicorn.protocols.http.h11_impl import H11Protocol

from telephony.aml import store
from telephony.aml.fix import Fix, Reason, Rejected
from telephony.aml.form import MAX_BODY_BYTES, parse_form
from telephony.aml.senders import Authenticator, RateLimit, Sender
from telephony.aml.sms import parse_sms
from telephony.config import AMLConfig
from telephony.location.identity import to_e164

log = structlog.get_logger(__name__)
Sink = Callable[[store.Stored, str], None]


@dataclass
class Metrics:
    """What /aml/v1/metrics reports (Prometheus text), counted under one lock."""

    counts: Counter[str]
    lock: threading.Lock

    def add(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def text(self) -> str:
        with self.lock:
            items = sorted(self.counts.items())
        lines = ["# TYPE telephony_aml_messages_total counter"]
        lines += [f'telephony_aml_messages_total{{result="{name}"}} {value}'
                  for name, value in items]
        return "\n".join(lines) + "\n"


class ClientCertificateH11(H11Protocol):
    """uvicorn's h11 protocol, telling the app the verified client certificate's CN.

    uvicorn passes no TLS details to ASGI apps; the connection's SSL object has them once the
    handshake (which checked the chain against aml.client_ca_file) is done.
    """

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        peer = ssl_object.getpeercert() if ssl_object is not None else None
        common_name = ""
        for rdn in (peer or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    common_name = value
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})["tls"] = {"client_cn": common_name}
            await inner(scope, receive, send)

        self.app = app


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        name, sep, secret = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (name, secret) if sep else None


def create_app(config: AMLConfig, engine: Engine, auth: Authenticator, sink: Sink,
               clock: Callable[[], float] = time.time) -> FastAPI:
    app = FastAPI(title="telephony AML receiver", openapi_url=None, docs_url=None,
                  redoc_url=None)
    limit = RateLimit(config.rate_per_s, config.rate_burst)
    writer = store.Writer(engine)
    app.state.writer = writer
    metrics = Metrics(Counter(), threading.Lock())
    app.state.metrics = metrics

    def sender_of(request: Request) -> Sender | Response:
        address = request.client.host if request.client else ""
        common_name = request.scope.get("extensions", {}).get("tls", {}).get("client_cn", "")
        credentials = _basic(request.headers.get("authorization", ""))
        if common_name:
            verdict = auth.by_certificate(common_name, address)
        elif credentials is not None:
            verdict = auth.by_secret(*credentials, address)
        else:
            verdict = 401
        if isinstance(verdict, Sender):
            if not limit.allow(verdict.name):
                metrics.add("rate-limited")
                return PlainTextResponse("rate limited\n", status_code=429,
                                         headers={"Retry-After": "1"})
            return verdict
        metrics.add("unauthenticated" if verdict == 401 else "forbidden")
        log.warning("aml.refused", status=verdict, client=address,
                    user=credentials[0][:64] if credentials else None,
                    certificate=common_name or None)
        return PlainTextResponse("unauthorized\n" if verdict == 401 else "forbidden\n",
                                 status_code=verdict,
                                 headers={"WWW-Authenticate": 'Basic realm="aml"'}
                                 if verdict == 401 else None)

    async def body_of(request: Request) -> bytes | Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                metrics.add("too-large")
                return PlainTextResponse("too large\n", status_code=413)
        return body

    def accept(sender: Sender, transport: str, raw: str, result: Fix | Rejected,
               number: str) -> Response:
        try:
            stored = writer.record(result, sender=sender.name, transport=transport, raw=raw,
                                   received_at=clock(), number=number)
        except SQLAlchemyError as exc:
            metrics.add("database-down")
            log.error("aml.store_failed", sender=sender.name, error=str(exc)[:200])
            return PlainTextResponse("not stored, retry\n", status_code=503)
        outcome = result.reason.value if isinstance(result, Rejected) else "accepted"
        metrics.add(outcome)
        log.info("aml.received", sender=sender.name, transport=transport, fix=stored.id,
                 result=outcome, number=stored.number or None)
        sink(stored, raw)
        return PlainTextResponse(f"OK {outcome} {stored.id}\n", status_code=200)

    @app.post("/aml/v1")
    async def https_form(request: Request) -> Response:
        sender = sender_of(request)
        if isinstance(sender, Response):
            return sender
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        result = parse_form(body, clock(), config.max_age_s, config.max_future_s)
        raw = body.decode("utf-8", "replace")
        return await _threaded(accept, sender, "https", raw, result, "")

    @app.post("/aml/v1/sms")
    async def sms_gateway(request: Request) -> Response:
        sender = sender_of(request)
        if isinstance(sender, Response):
            return sender
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        text, originator = _gateway_fields(body, request.headers.get("content-type", ""),
                                           config)
        if text is None:
            result: Fix | Rejected = Rejected(Reason.MALFORMED,
                                              f"no {config.sms_text_field} field")
        else:
            result = parse_sms(text, originator, clock(), config.max_age_s, config.max_future_s)
        raw = text if text is not None else body.decode("utf-8", "replace")
        number = (to_e164(originator) if originator else None) or ""
        return await _threaded(accept, sender, "sms", raw, result, number)

    @app.get("/aml/v1/metrics")
    def metrics_page(request: Request) -> Response:
        if request.client is None or not request.client.host.startswith("127."):
            return PlainTextResponse("forbidden\n", status_code=403)
        return PlainTextResponse(metrics.text())

    return app


async def _threaded(fn: Callable[..., Response], *args: Any) -> Response:
    return await run_in_threadpool(fn, *args)


def _gateway_fields(body: bytes, content_type: str, config: AMLConfig) -> tuple[str | None, str]:
    """The SMS text and originator from the gateway's POST, JSON or form."""
    if "json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            return None, ""
        if not isinstance(data, dict):
            return None, ""
        text, originator = data.get(config.sms_text_field), data.get(config.sms_from_field, "")
        return (text if isinstance(text, str) else None,
                originator if isinstance(originator, str) else "")
    try:
        form = parse_qs(body.decode("utf-8"), max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return None, ""
    texts = form.get(config.sms_text_field)
    return (texts[0] if texts else None), form.get(config.sms_from_field, [""])[0]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed pair for the sandbox, made once (production sets aml.tls_*_file)."""
    cert, key = directory / "aml-cert.pem", directory / "aml-key.pem"
    if cert.exists() and key.exists():
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is needed to make the AML receiver's sandbox certificate")
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "825", "-subj", "/CN=telephony AML sandbox", "-addext",
         "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    key.chmod(0o600)
    return cert, key


def server(config: AMLConfig, app: FastAPI, cert: Path, key: Path) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(
        app, host=config.bind, port=config.port, log_config=None, access_log=False,
        ssl_certfile=str(cert), ssl_keyfile=str(key),
        ssl_ca_certs=config.client_ca_file or None,
        ssl_cert_reqs=ssl.CERT_OPTIONAL if config.client_ca_file else ssl.CERT_NONE,
        http=ClientCertificateH11, lifespan="off", timeout_graceful_shutdown=2,
    ))
