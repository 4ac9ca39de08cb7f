"""`telephony serve`, plus its own measurements written out when it stops.

    python -m tests.harness.perf.probe --out FILE [--set SECTION.KEY=VALUE ...]

The very components and Service of `telephony serve`, in one process; a thread reads the
AGI server's command timings and the audit writer's receive-to-commit lag, which the service
keeps in memory, and the JSON written at exit holds every sample. Nothing is added to the
service: this is how the bench reads "our own timings" without a metrics endpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from telephony import config as config_mod
from telephony import logs
from telephony.agi import FastAGIServer
from telephony.audit import AuditWriter, WriterMetrics
from telephony.service import Service, components

# The writer keeps its latest 1000 lag samples; reading four times a second keeps up with
# 4000 events/s, well above any call load the bench places.
POLL_S = 0.25


class Metered(Protocol):
    def metrics(self) -> WriterMetrics: ...


class LagReader:
    """Collects every lag sample the writer records, from its ``metrics()`` snapshots."""

    def __init__(self, writer: Metered) -> None:
        self._writer = writer
        self._seen = writer.metrics().events_written
        self.samples: list[float] = []
        self.missed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.read()

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self.read()

    def read(self) -> None:
        metrics = self._writer.metrics()
        new = metrics.events_written - self._seen
        if new <= 0:
            return
        self._seen = metrics.events_written
        available = list(metrics.lag_ms)[-new:]
        self.samples.extend(available)
        self.missed += new - len(available)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.perf.probe")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args(argv)
    config = config_mod.load(None, env={}, overrides=args.overrides)
    logs.configure(config.service.log_level, "json")
    parts = components(config)
    agi = next(p for p in parts if isinstance(p, FastAGIServer))
    writer = next(p for p in parts if isinstance(p, AuditWriter))
    lag = LagReader(writer)
    lag.start()
    code = Service(config, parts).run()
    lag.stop()
    metrics = writer.metrics()
    args.out.write_text(json.dumps({
        "agi_ms": {command: [s * 1000 for s in agi.timings.samples(command)]
                   for command in agi.timings.summary()},
        "audit": {
            "lag_ms": lag.samples,
            "lag_samples_missed": lag.missed,
            "events_written": metrics.events_written,
            "events_spooled": metrics.events_spooled,
            "spool_backlog": metrics.spool_backlog,
        },
    }))  # fmt: skip
    return code


if __name__ == "__main__":
    sys.exit(main())
