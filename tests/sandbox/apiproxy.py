"""A TLS proxy in front of the sandbox API server that withholds the reply to one DELETE.

It reproduces a lost reply: the first DELETE of the named PV that is not a dry run is
carried out by the real API server, but its answer never reaches the client, which times out.
Every other request is passed through. The proxy serves with the API server's own certificate
(valid for 127.0.0.1) and forwards as the sandbox admin; each request is read whole and
answered whole (HTTP/1.1, keep-alive), one thread per client connection.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests.sandbox.controlplane import ControlPlane

# Headers that belong to one connection, not to the request or reply it carries.
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows the test's own output."""

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        proxy = self.server.proxy
        hold = proxy.note(self.command, self.path, body or b"")
        upstream = http.client.HTTPSConnection(
            "127.0.0.1", proxy.plane.api_port, context=proxy.plane._ssl_context(), timeout=60
        )
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
        finally:
            upstream.close()
        if hold:
            time.sleep(proxy.hold_seconds)  # the client gave up long ago
            self.close_connection = True
            return
        self.send_response(reply.status, reply.reason)
        for key, value in reply.getheaders():
            if key.lower() not in _HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: ApiProxy


class ApiProxy:
    """Use as a context manager; `kubeconfig()` writes an admin kubeconfig that goes through it.

    `deletes` lists every DELETE of the PV seen, as "dry-run" or "delete", in order.
    """

    def __init__(self, plane: ControlPlane, pv_name: str, *, hold_seconds: float) -> None:
        self.plane = plane
        self.path = f"/api/v1/persistentvolumes/{pv_name}"
        self.hold_seconds = hold_seconds
        self.deletes: list[str] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        pki = plane.workdir / "pki"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pki / "apiserver.crt"), str(pki / "apiserver.key"))
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def note(self, method: str, path: str, body: bytes) -> bool:
        """Record a request; True for the one whose reply is withheld."""
        if method != "DELETE" or path.split("?", maxsplit=1)[0] != self.path:
            return False
        dry_run = b"dryRun" in body or "dryRun=" in path
        with self._lock:
            self.deletes.append("dry-run" if dry_run else "delete")
            return not dry_run and self.deletes.count("delete") == 1

    def kubeconfig(self, path: Path) -> Path:
        """The sandbox admin's kubeconfig, pointed at the proxy."""
        config = yaml.safe_load(self.plane.kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = self.url
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def __enter__(self) -> ApiProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
