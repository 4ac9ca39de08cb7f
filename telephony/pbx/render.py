"""Render our Asterisk configuration from the templates in dialplans/.

Two products from one set of templates, so production and tests cannot drift:
- the include files (`*_112.conf`) that carry everything of ours, for any Asterisk;
- a sandbox: those includes plus the main files (asterisk.conf, modules.conf, ...) that a
  self-contained Asterisk under a runtime directory needs.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import jinja2

from telephony.config import Config, resolve_path
from telephony.pbx.provision import AsteriskInstall

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "dialplans"
INCLUDE_FILES = (
    "pjsip_112.conf",
    "extensions_112.conf",
    "queues_112.conf",
    "manager_112.conf",
    "geolocation_112.conf",
)
SANDBOX_FILES = (
    "asterisk.conf",
    "modules.conf",
    "logger.conf",
    "pjsip.conf",
    "extensions.conf",
    "queues.conf",
    "manager.conf",
    "geolocation.conf",
    "cel.conf",
    "cel_custom.conf",
    "rtp.conf",
    "cdr.conf",
    "features.conf",
    "indications.conf",
    "acl.conf",
    "udptl.conf",
    "pjproject.conf",
    "ccss.conf",
)
AMI_SECRET_FILE = "ami.secret"


@dataclass(frozen=True)
class Layout:
    """Where a sandbox keeps everything; all of it inside one runtime directory."""

    root: Path

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def lib(self) -> Path:
        return self.root / "lib"

    @property
    def asterisk_conf(self) -> Path:
        return self.etc / "asterisk.conf"

    @property
    def ctl(self) -> Path:
        return self.run / "asterisk.ctl"

    @property
    def pidfile(self) -> Path:
        return self.run / "asterisk.pid"

    @property
    def console_log(self) -> Path:
        return self.log / "console.log"

    @property
    def cel_csv(self) -> Path:
        return self.log / "cel-custom" / "Master.csv"

    def dirs(self) -> tuple[Path, ...]:
        return (self.etc, self.run, self.log, self.spool, self.lib, self.log / "cel-custom")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def ami_secret(config: Config, layout: Layout) -> str:
    """The configured AMI secret, else one generated once per runtime directory."""
    if config.ami.secret:
        return config.ami.secret
    path = layout.root / AMI_SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def context(config: Config, secret: str) -> dict[str, object]:
    return {
        "config": config,
        "ami_secret": secret,
        "prompts_dir": resolve_path(config.ivr.prompts_dir),
    }


def render_includes(config: Config, secret: str) -> dict[str, str]:
    env = _environment()
    values = context(config, secret)
    return {name: env.get_template(name).render(values) for name in INCLUDE_FILES}


def render_sandbox(config: Config, install: AsteriskInstall, layout: Layout) -> dict[str, str]:
    secret = ami_secret(config, layout)
    env = _environment()
    values = {**context(config, secret), "install": install, "layout": layout}
    files = {name: env.get_template(name).render(values) for name in SANDBOX_FILES}
    files.update(render_includes(config, secret))
    return files


def write_sandbox(config: Config, install: AsteriskInstall, layout: Layout) -> None:
    for directory in layout.dirs():
        directory.mkdir(parents=True, exist_ok=True)
    for name, text in render_sandbox(config, install, layout).items():
        (layout.etc / name).write_text(text)
