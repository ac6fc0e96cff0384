"""Throw-away certificates for the tests: one builder (`cryptography`) for the sandbox control
plane's PKI and for the TLS tests' gluster certificates.

    pki = Pki.create(tmp)
    pki.server_options()        # gluster volume options: the bricks' own cert, key, CA
    pki.client_dir("fork")      # tls.crt, tls.key, tls.ca (the appuio fork's Secret keys)

One CA signs the server's and the client's certificate; a second, unrelated CA is the
"wrong CA". The bricks' files are readable by root only, so a client that is not root can
only connect with files handed to it: it cannot fall back on the paths the volume file names.
`new_key`, `subject`, `certificate`, `pem_key` and `pem_cert` build any other certificate
(the control plane's, a benchmark's own client).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

FORK = ("tls.crt", "tls.key", "tls.ca")
GLUSTER = ("glusterfs.pem", "glusterfs.key", "glusterfs.ca")


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def subject(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def certificate(
    name: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    """`key`'s certificate for `name`, valid for two days, signed by `issuer` (name, key) or
    self-signed; `server` adds the loopback names an API server is reached by."""
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer if issuer else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, data: bytes, mode: int) -> None:
    path.write_bytes(data)
    os.chmod(path, mode)


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
        cas = {}
        for ca, cn in (("ca", "grt-ca"), ("wrong-ca", "grt-wrong-ca")):
            key = new_key()
            cas[ca] = (subject(cn), key)
            _write(work / f"{ca}.key", pem_key(key), 0o600)
            _write(
                work / f"{ca}.pem", pem_cert(certificate(subject(cn), key, None, ca=True)), 0o600
            )
        for leaf, cn in (("server", "grt-server"), ("client", "grt-client")):
            key = new_key()
            _write(work / f"{leaf}.key", pem_key(key), 0o600)
            _write(work / f"{leaf}.pem", pem_cert(certificate(subject(cn), key, cas["ca"])), 0o600)
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
