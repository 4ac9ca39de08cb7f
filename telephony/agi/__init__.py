"""FastAGI server and the 112 IVR that runs on it.

server = FastAGIServer("127.0.0.1", 4573, {"ivr": IVR(prompts_dir, DefaultRouter("q"),
                                                    fallback_queue="q")})
server.start()
...
server.stop()
"""

from __future__ import annotations

from telephony.agi.ivr import IVR
from telephony.agi.router import DefaultRouter, RouteDecision, Router
from telephony.agi.server import FastAGIServer, Handler, Session
from telephony.agi.timings import CommandTimings, TimingStats

__all__ = [
    "IVR",
    "CommandTimings",
    "DefaultRouter",
    "FastAGIServer",
    "Handler",
    "RouteDecision",
    "Router",
    "Session",
    "TimingStats",
]
