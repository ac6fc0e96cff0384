"""Throw-away certificates for TLS tests, made with the `openssl` command in a temp directory.

    pki = Pki.create(tmp)
    pki.server_options()        # gluster volume options: the bricks' own cert, key, CA
    pki.client_dir("fork")      # tls.crt, tls.key, tls.ca (the appuio fork's Secret keys)

One CA signs the server's and the client's certificate; a second, unrelated CA is the
"wrong CA". The bricks' files are readable by root only, so a client that is not root can
only connect with files handed to it: it cannot fall back on the paths the volume file names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

FORK = ("tls.crt", "tls.key", "tls.ca")
GLUSTER = ("glusterfs.pem", "glusterfs.key", "glusterfs.ca")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _self_signed(cwd: Path, name: str, cn: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={cn}",
        cwd=cwd,
    )  # fmt: skip


def _signed(cwd: Path, name: str, cn: str, ca: str) -> None:
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
        "-out", f"{name}.csr", "-subj", f"/CN={cn}",
        cwd=cwd,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
        cwd=cwd,
    )  # fmt: skip


@dataclass(frozen=True)
class Pki:
    """A CA, a server and a client certificate signed by it, and an unrelated CA."""

    root: Path

    @classmethod
    def create(cls, root: Path) -> Pki:
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)
        work = root / "work"
        work.mkdir(mode=0o700)
        _self_signed(work, "ca", "grt-ca")
        _self_signed(work, "wrong-ca", "grt-wrong-ca")
        _signed(work, "server", "grt-server", "ca")
        _signed(work, "client", "grt-client", "ca")
        server = root / "server"
        server.mkdir(mode=0o700)
        pairs = (("server.pem", "cert.pem"), ("server.key", "key.pem"), ("ca.pem", "ca.pem"))
        for src, dst in pairs:
            shutil.copyfile(work / src, server / dst)
            os.chmod(server / dst, 0o600)
        return cls(root)

    def server_options(self) -> dict[str, str]:
        """`gluster volume set` options for a volume with TLS on its I/O path."""
        server = self.root / "server"
        return {
            "ssl.own-cert": str(server / "cert.pem"),
            "ssl.private-key": str(server / "key.pem"),
            "ssl.ca-list": str(server / "ca.pem"),
            "client.ssl": "on",
            "server.ssl": "on",
        }

    def client_dir(
        self,
        name: str,
        *,
        names: tuple[str, str, str] = FORK,
        ca: str = "ca",
        without: tuple[str, ...] = (),
    ) -> Path:
        """A directory as a mounted Secret would be: the client's cert, key and `ca`'s
        certificate under `names`, leaving out the files named in `without`; readable by all
        (the unprivileged test client must read it)."""
        target = self.root / name
        target.mkdir(mode=0o755)
        work = self.root / "work"
        for src, dst in zip(("client.pem", "client.key", f"{ca}.pem"), names, strict=True):
            if dst in without:
                continue
            shutil.copyfile(work / src, target / dst)
            os.chmod(target / dst, 0o644)
        return target
