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


def make_client_ca(directory: Path, common_name: str) -> tuple[Path, Path, Path]:
    """A test CA and a client certificate it signed for ``common_name``: (ca, cert, key)."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is needed to make the test certificates"
    ca, ca_key = directory / "client-ca.pem", directory / "client-ca-key.pem"
    cert, key, csr = directory / "client.pem", directory / "client-key.pem", directory / "c.csr"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for argv in (
        ["req", "-x509", *ec, "-days", "1", "-subj", "/CN=112 test sender CA",
         "-keyout", str(ca_key), "-out", str(ca)],
        ["req", *ec, "-subj", f"/CN={common_name}", "-keyout", str(key), "-out", str(csr)],
        ["x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "1", "-out", str(cert)],
    ):
        subprocess.run([openssl, *argv], check=True, capture_output=True, timeout=30)
    return ca, cert, key
