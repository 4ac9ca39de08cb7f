"""A throw-away self-signed certificate for TLS tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def make_certificate(directory: Path, name: str = "112 test") -> tuple[Path, Path]:
    """A self-signed EC certificate and its key naming 127.0.0.1, where sandboxes listen."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is needed to make the test certificate"
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", f"/CN={name}", "-addext",
         "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key
