"""telephony: the thinking behind an Indonesian 112 call centre's Asterisk."""

from __future__ import annotations

__version__ = "0.1.0"
