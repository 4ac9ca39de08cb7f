"""`telephony console`: build the hub and the app, and serve them with uvicorn."""

from __future__ import annotations

from collections.abc import Callable

import structlog
import uvicorn

from telephony.ami import AMIConnection, Frame
from telephony.config import Config, resolve_path
from telephony.console.app import create_app
from telephony.console.live import Hub
from telephony.control import ami_connection
from telephony.location import load_regions
from telephony.operators.roster import load_roster
from telephony.store import open_database

log = structlog.get_logger(__name__)


def build_hub(config: Config) -> Hub:
    engine = open_database(config)
    regions = load_regions(resolve_path(config.location.regions_file))
    roster = load_roster(resolve_path(config.operators.file), regions)

    def ami(on_event: Callable[[Frame], None], on_connect: Callable[[], None]) -> AMIConnection:
        return ami_connection(config, on_event, on_connect=on_connect,
                              keepalive_s=config.ami.keepalive_s, backoff_max_s=5.0)

    return Hub(engine, regions, roster, ami)


def url(config: Config) -> str:
    scheme = "https" if config.console.tls_cert_file else "http"
    return f"{scheme}://{config.console.bind}:{config.console.port}/"


def run(config: Config) -> int:
    hub = build_hub(config)
    app = create_app(config, hub)
    console = config.console
    server = uvicorn.Server(uvicorn.Config(
        app, host=console.bind, port=console.port, log_config=None, access_log=False,
        ssl_certfile=str(resolve_path(console.tls_cert_file)) if console.tls_cert_file else None,
        ssl_keyfile=str(resolve_path(console.tls_key_file)) if console.tls_key_file else None,
        ws="websockets", lifespan="on", timeout_graceful_shutdown=3,
    ))
    log.info("console.starting", url=url(config))
    server.run()
    log.info("console.stopped")
    return 0
