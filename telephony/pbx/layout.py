"""Where a sandbox keeps everything (one runtime directory), and the AMI secret kept there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from telephony.config import Config
from telephony.secretfile import read_or_create

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


def ami_secret(config: Config, layout: Layout) -> str:
    """The configured AMI secret, else one generated once per runtime directory."""
    if config.ami.secret:
        return config.ami.secret
    return read_or_create(layout.root / AMI_SECRET_FILE)
