"""Asterisk Manager Interface: the wire format (pure) and a self-healing client (socket edge)."""

from __future__ import annotations

from telephony.ami.client import (
    ActionFailed,
    ActionTimeout,
    AMIConnection,
    AMIError,
    ListResult,
    NotConnected,
    backoff_delay,
    include_filter,
)
from telephony.ami.frames import ActionFieldError, Frame, FrameParser, encode_action

__all__ = [
    "AMIConnection",
    "AMIError",
    "ActionFailed",
    "ActionFieldError",
    "ActionTimeout",
    "Frame",
    "FrameParser",
    "ListResult",
    "NotConnected",
    "backoff_delay",
    "encode_action",
    "include_filter",
]
