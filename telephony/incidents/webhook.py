"""Webhook hand-offs: the signature (pure), and the worker that empties the durable outbox.

The signature is HMAC-SHA256 with the agency's secret over ``<timestamp>.<body>``, sent as
``X-Telephony-Signature: t=<timestamp>,v1=<hex>``; a receiver recomputes it and refuses a
timestamp far from its clock (replay). Each delivery carries an ``Idempotency-Key`` (the same
on every attempt) and ``X-Telephony-Attempt``; every attempt after the first says
``X-Telephony-Retry: true``. The attempt is counted and committed before the request leaves,
so a crash mid-send makes the next one a marked retry, never a silent second copy.

The worker is a thread of the console process: requests never wait for it, it sends from a
small pool with a hard timeout, so a slow, dead or garbage-answering receiver only delays its
own retries (exponential backoff up to ``incidents.retry_max_s``). Each pass also raises the
escalation alerts.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from telephony.config import resolve_path
from telephony.incidents.models import Outbox
from telephony.incidents.record import OpenHandoff
from telephony.incidents.service import Incidents, now
from telephony.secretfile import read_or_create

log = structlog.get_logger(__name__)
SIGNATURE_HEADER = "X-Telephony-Signature"
MAX_SKEW_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, header: str, body: bytes, at: float | None = None) -> bool:
    """What a receiver does: the signature matches and its timestamp is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs((at if at is not None else time.time()) - timestamp) > MAX_SKEW_S:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def backoff_s(attempts: int, first_s: float, max_s: float) -> float:
    """The wait after ``attempts`` failed tries: first_s, doubling, capped at max_s."""
    return float(min(max_s, first_s * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Settings:
    timeout_s: float
    retry_first_s: float
    retry_max_s: float
    interval_s: float
    ca_file: str = ""


class Worker:
    def __init__(self, incidents: Incidents, settings: Settings,
                 on_alert: Callable[[OpenHandoff], None]) -> None:
        self._incidents = incidents
        self._settings = settings
        self._on_alert = on_alert
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy: set[int] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="incident-webhook")
        self._thread = threading.Thread(target=self._run, name="incident-outbox", daemon=True)
        context = ssl.create_default_context(
            cafile=str(resolve_path(settings.ca_file)) if settings.ca_file else None)
        self._client = httpx.Client(verify=context, follow_redirects=False,
                                    timeout=httpx.Timeout(settings.timeout_s))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def wake(self) -> None:
        """A dispatch was just queued: send it now rather than at the next pass."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._pass()
            except SQLAlchemyError as exc:  # the database is away: try again next pass
                log.warning("incidents.outbox_unreachable", error=str(exc))
            except Exception:  # one bad row must not stop every later hand-off
                log.exception("incidents.outbox_failed")
            self._wake.wait(self._settings.interval_s)
            self._wake.clear()

    def _pass(self) -> None:
        moment = now()
        with Session(self._incidents.engine) as session:
            due = session.scalars(select(Outbox).where(
                Outbox.delivered_at.is_(None), Outbox.next_attempt_at <= moment)
                .order_by(Outbox.next_attempt_at).limit(20)).all()
            with self._lock:
                due = [row for row in due if row.id not in self._busy]
                self._busy.update(row.id for row in due)
            for row in due:
                row.attempts += 1
                # Not due again until this attempt's outcome is known, even after a crash.
                row.next_attempt_at = moment + timedelta(
                    seconds=self._settings.timeout_s + backoff_s(
                        row.attempts, self._settings.retry_first_s, self._settings.retry_max_s))
            session.commit()
            jobs = [(row.id, row.handoff_id, row.agency_id, row.idempotency_key,
                     row.body.encode(), row.attempts) for row in due]
        for job in jobs:
            self._pool.submit(self._send, *job)
        for alert in self._incidents.escalate(moment):
            log.warning("incidents.escalated", incident=alert.incident_id,
                        agency=alert.agency_id, since_dispatch_s=alert.since_dispatch_s)
            self._on_alert(alert)

    def _send(self, outbox_id: int, handoff_id: int, agency_id: str, key: str, body: bytes,
              attempt: int) -> None:
        try:
            error = self._post(agency_id, key, body, attempt)
            self._settle(outbox_id, handoff_id, attempt, error)
        except Exception:
            log.exception("incidents.send_failed", agency=agency_id, outbox=outbox_id)
        finally:
            with self._lock:
                self._busy.discard(outbox_id)

    def _post(self, agency_id: str, key: str, body: bytes, attempt: int) -> str:
        """'' when the receiver took it (2xx), else why not."""
        agency = self._incidents.agencies.get(agency_id)
        if agency is None or not agency.webhook_url:
            return f"agency {agency_id} has no webhook any more"
        secret = read_or_create(resolve_path(agency.webhook_secret_file))
        headers = {"Content-Type": "application/json", "Idempotency-Key": key,
                   SIGNATURE_HEADER: sign(secret, int(time.time()), body),
                   "X-Telephony-Attempt": str(attempt),
                   "X-Telephony-Retry": "true" if attempt > 1 else "false"}
        try:
            # Streamed: only the status is read, so a receiver sending garbage cannot stall us.
            with self._client.stream("POST", agency.webhook_url, content=body,
                                     headers=headers) as answer:
                status = answer.status_code
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        return "" if 200 <= status < 300 else f"HTTP {status}"

    def _settle(self, outbox_id: int, handoff_id: int, attempt: int, error: str) -> None:
        with Session(self._incidents.engine) as session:
            row = session.get(Outbox, outbox_id)
            if row is None:
                return
            if error:
                row.last_error = error
                row.next_attempt_at = now() + timedelta(seconds=backoff_s(
                    attempt, self._settings.retry_first_s, self._settings.retry_max_s))
                log.warning("incidents.delivery_failed", agency=row.agency_id, attempt=attempt,
                            error=error)
                session.commit()
                return
            row.delivered_at = now()
            row.last_error = ""
            session.commit()
        log.info("incidents.delivered", handoff=handoff_id, attempt=attempt)
        self._incidents.delivered(handoff_id, attempt)
