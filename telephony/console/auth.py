"""Web sessions: an HttpOnly SameSite cookie, a CSRF token per session, throttled logins.

Sessions live in the console's memory: a console restart logs everyone out, which is the
safe direction. State-changing requests must echo the session's CSRF token in the
``X-CSRF-Token`` header (a page reads it from /api/me); a cross-site form cannot.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from fastapi import HTTPException, Request, WebSocket

from telephony.console.accounts import Account
from telephony.console.live import Viewer

COOKIE = "telephony_console"
CSRF_HEADER = "X-CSRF-Token"


@dataclass
class WebSession:
    token: str
    account: Account
    viewer: Viewer
    csrf: str
    expires: float


class Sessions:
    def __init__(self, lifetime_s: float) -> None:
        self._lifetime = lifetime_s
        self._lock = threading.Lock()
        self._sessions: dict[str, WebSession] = {}

    def create(self, account: Account, viewer: Viewer) -> WebSession:
        session = WebSession(secrets.token_urlsafe(32), account, viewer,
                             secrets.token_urlsafe(32), time.time() + self._lifetime)
        with self._lock:
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> WebSession | None:
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and session.expires < time.time():
                del self._sessions[token]
                return None
            return session

    def end(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)


class LoginThrottle:
    """At most ``attempts`` failures per name and per client address within ``window_s``."""

    def __init__(self, attempts: int, window_s: float) -> None:
        self._attempts = attempts
        self._window = window_s
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        stamps = self._failures.setdefault(key, deque())
        while stamps and stamps[0] < now - self._window:
            stamps.popleft()
        return stamps

    def blocked(self, *keys: str) -> float:
        """Seconds until a login may be tried again for these keys; 0 when it may now."""
        now = time.monotonic()
        with self._lock:
            waits = [self._recent(k, now)[0] + self._window - now for k in keys
                     if len(self._recent(k, now)) >= self._attempts]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, name_key: str) -> None:
        with self._lock:
            self._failures.pop(name_key, None)


def _sessions(request: Request | WebSocket) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def current(request: Request) -> WebSession:
    """Dependency: the caller's session, or 401."""
    session = _sessions(request).get(request.cookies.get(COOKIE))
    if session is None:
        raise HTTPException(401, "not logged in")
    return session


def changing(request: Request) -> WebSession:
    """Dependency for state changes: a session and its CSRF token, or 401/403."""
    session = current(request)
    given = request.headers.get(CSRF_HEADER, "")
    if not secrets.compare_digest(given.encode(), session.csrf.encode()):
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header")
    return session


def for_websocket(websocket: WebSocket) -> WebSession | None:
    return _sessions(websocket).get(websocket.cookies.get(COOKIE))
