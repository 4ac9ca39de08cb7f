"""Whether a trunk INVITE's PIDF-LO is safe to hand to Asterisk, asked by Kamailio over HTTP.

Asterisk 22.10.1 dereferences NULL on a PIDF-LO without <usage-rules> when the endpoint has
a geoloc_incoming_call_profile, and every call in progress dies with it. Kamailio posts each
INVITE body that carries location to `POST /edge/pidf`; the first line of the answer is
`keep` or `strip <reason>`, and Kamailio strips the body part and the Geolocation header on
anything but `keep` (an unanswered question included): the call goes on with its cell.

The checks reuse the IVR's own parsers (defusedxml, bounded sizes), plus what Asterisk needs
and the IVR does not: the part the Geolocation cid: names, and usage-rules in every geopriv.

The same server takes the edge's registrar's word that an operator's phone has just
registered, `GET /edge/pidf/registered?op=<id>`, and hands the id on at once (204): serve
then asks Asterisk to qualify that operator now (telephony.edge.registered).

In a cluster it also tells the edge which nodes a new call goes to, `GET
/edge/pidf/regency` (telephony.edge.regency).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import structlog
from defusedxml.ElementTree import fromstring

from telephony.config import Config
from telephony.location.body import PIDF_TYPE, body_parts
from telephony.location.geolocation import parse_geolocation
from telephony.location.pidf import NS_GEOPRIV, PidfLocation, parse_pidf
from telephony.location.unparsed import MAX_BODY_BYTES, Unparsed
from telephony.operators.roster import is_operator_id

log = structlog.get_logger(__name__)

PATH = "/edge/pidf"
REGISTERED_PATH = f"{PATH}/registered"
REGENCY_PATH = f"{PATH}/regency"
# How long one request may keep a handler thread; Kamailio itself gives up after 1 s.
SOCKET_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Verdict:
    keep: bool
    reason: str

    @property
    def line(self) -> str:
        return "keep" if self.keep else f"strip {self.reason}"


def _strip(reason: str) -> Verdict:
    return Verdict(False, reason)


def check(content_type: str, body: bytes, geolocation: str) -> Verdict:
    """Keep a PIDF-LO only if Asterisk can take it safely; never raises."""
    if len(body) > MAX_BODY_BYTES:
        return _strip("too-large")
    references = parse_geolocation(geolocation) if geolocation else ()
    if isinstance(references, Unparsed):
        return _strip(f"geolocation-{references.reason}")
    cids = [r.content_id.lower() for r in references if r.content_id]
    parts = body_parts(content_type, body)
    if isinstance(parts, Unparsed):
        return _strip(parts.reason)
    pidfs = [p for p in parts if p.content_type == PIDF_TYPE]
    if not pidfs:
        # A Geolocation cid: with no part for it is what Asterisk cannot resolve either.
        return _strip("no-pidf") if cids else Verdict(True, "no-pidf")
    if len(pidfs) > 1 or len(cids) != 1:
        return _strip("ambiguous")
    if (pidfs[0].content_id or "").lower() != cids[0]:
        return _strip("cid-mismatch")
    location = parse_pidf(pidfs[0].data)
    if not isinstance(location, PidfLocation):
        return _strip(location.reason)
    if location.best is None:
        return _strip("no-position")
    # parse_pidf has accepted the document, so parsing it again is safe and bounded.
    root = fromstring(pidfs[0].data.lstrip(), forbid_dtd=True)
    geoprivs = list(root.iter(f"{{{NS_GEOPRIV}}}geopriv"))
    if not geoprivs or any(g.find(f"{{{NS_GEOPRIV}}}usage-rules") is None for g in geoprivs):
        return _strip("no-usage-rules")
    return Verdict(True, "ok")


def registered_operator(query: str) -> str | None:
    """The operator of a `registered` query (`op=<id>`): None unless exactly one, well-formed."""
    try:
        ops = parse_qs(query, keep_blank_values=True, max_num_fields=4).get("op", [])
    except ValueError:  # more fields than any question of Kamailio's has
        return None
    if len(ops) != 1 or not is_operator_id(ops[0]):
        return None
    return ops[0]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        on_registered: Callable[[str], None] | None,
        regency: Callable[[str], str] | None,
    ) -> None:
        super().__init__(address, _Handler)
        self.on_registered = on_registered
        self.regency = regency


class _Handler(BaseHTTPRequestHandler):
    timeout = SOCKET_TIMEOUT_S

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        server = cast(_Server, self.server)
        on_registered = server.on_registered
        if url.path == REGENCY_PATH and server.regency is not None:
            self._answer(200, server.regency(url.query))
            return
        if url.path != REGISTERED_PATH or on_registered is None:
            self._answer(404, "not found")
            return
        op = registered_operator(url.query)
        if op is None:
            self._answer(400, "bad operator")
            return
        log.info("edge.phone_registered", op=op)
        # Only queued: a SIP worker of Kamailio's waits for this answer.
        on_registered(op)
        self.send_response(204)
        self.end_headers()

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path != PATH:
            self._answer(404, "not found")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._answer(200, _strip("too-large").line)
            return
        query = parse_qs(url.query)
        verdict = check(
            self.headers.get("Content-Type", ""),
            self.rfile.read(length),
            query.get("geolocation", [""])[0],
        )
        call_id = query.get("call_id", [""])[0][:128]
        log.info("edge.pidf_checked", call_id=call_id, keep=verdict.keep, reason=verdict.reason)
        self._answer(200, verdict.line)

    def _answer(self, status: int, text: str) -> None:
        data = f"{text}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return  # each verdict is logged above, with its Call-ID


class PidfValidator:
    """The HTTP endpoint Kamailio asks; a component of `telephony serve` in edge mode."""

    def __init__(
        self,
        host: str,
        port: int,
        on_registered: Callable[[str], None] | None = None,
        regency: Callable[[str], str] | None = None,
    ) -> None:
        self._server = _Server((host, port), on_registered, regency)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="edge-pidf", daemon=True
        )
        self._thread.start()
        log.info("edge.pidf_validator_listening", address=f"{self.address[0]}:{self.address[1]}")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()


def validator_for(
    config: Config,
    on_registered: Callable[[str], None] | None = None,
    regency: Callable[[str], str] | None = None,
) -> PidfValidator:
    # Kamailio runs beside telephony and asks over loopback only.
    return PidfValidator("127.0.0.1", config.edge.validator_port, on_registered, regency)
