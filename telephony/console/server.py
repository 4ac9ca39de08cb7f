"""`telephony console`: build the hub and the app, and serve them with uvicorn."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog
import uvicorn

from telephony.ami import AMIConnection, Frame
from telephony.aml import receiver
from telephony.aml.senders import Authenticator, load_senders
from telephony.config import Config, resolve_path
from telephony.console.app import create_app
from telephony.console.handset import HandsetDesk
from telephony.console.live import Hub
from telephony.control import ami_connection
from telephony.location import load_regions
from telephony.operators.roster import load_roster
from telephony.pbx.render import queues
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
    receiver = start_receiver(config, hub)
    console = config.console
    server = uvicorn.Server(uvicorn.Config(
        app, host=console.bind, port=console.port, log_config=None, access_log=False,
        ssl_certfile=str(resolve_path(console.tls_cert_file)) if console.tls_cert_file else None,
        ssl_keyfile=str(resolve_path(console.tls_key_file)) if console.tls_key_file else None,
        ws="websockets", lifespan="on", timeout_graceful_shutdown=3,
    ))
    log.info("console.starting", url=url(config))
    try:
        server.run()
    finally:
        if receiver is not None:
            receiver.stop()
    log.info("console.stopped")
    return 0


class Receiver:
    """The AML receiver's own uvicorn server, on its own thread and event loop.

    It shares the console's process because a fix goes to the console's live view (the
    board, the cards and the AMI session that audits it) and a second process would need a
    channel for that; it gets its own thread and loop so a flood of fixes cannot delay the
    operators' pages, and it stays apart from `telephony serve`, so call handling never waits
    on it.
    """

    def __init__(self, server: uvicorn.Server, desk: HandsetDesk) -> None:
        self.server, self.desk = server, desk
        self.thread = threading.Thread(target=server.run, name="aml-receiver", daemon=True)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
        self.desk.stop()


def start_receiver(config: Config, hub: Hub) -> Receiver | None:
    aml = config.aml
    if not aml.port:
        return None
    if aml.tls_cert_file:
        cert, key = resolve_path(aml.tls_cert_file), resolve_path(aml.tls_key_file)
    else:
        cert, key = receiver.make_certificate(
            resolve_path(config.asterisk.runtime_dir).parent / "aml")
    senders = load_senders(resolve_path(aml.senders_file))
    desk = HandsetDesk(aml, hub, queues=queues(config))
    hub.handset = desk
    app = receiver.create_app(aml, hub.engine, Authenticator(senders), desk.received)
    running = Receiver(receiver.server(aml, app, cert, key), desk)
    desk.start()
    running.thread.start()
    log.info("aml.starting", url=f"https://{aml.bind}:{aml.port}/aml/v1", senders=len(senders))
    return running
