"""Push the pass's outcome to a Prometheus Pushgateway, the batch-job way.

A CronJob is gone before Prometheus could scrape it, so each pass pushes its numbers to one
group (job + lease namespace). A clean pass (exit 0) PUTs the whole group, last-success
included; any other pass POSTs, which replaces only the metrics it sends, so the previous
last-success time survives and "no success for an hour" stays alertable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import (
    basic_auth_handler,
    default_handler,
    push_to_gateway,
    pushadd_to_gateway,
)

from recycler_job.logs import mask_url, redact
from recycler_job.report import OUTCOMES, RunReport

log = logging.getLogger(__name__)

JOB = "gluster-recycler"
PREFIX = "gluster_recycler"
PUSH_TIMEOUT = 10.0  # seconds: a slow gateway must not hold the Job past its deadline


def build_registry(report: RunReport, *, now: float) -> CollectorRegistry:
    """The pass's metrics; last-success only when the pass exits 0."""
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float) -> None:
        Gauge(f"{PREFIX}_{name}", doc, registry=registry).set(value)

    gauge("last_run_timestamp_seconds", "When the last pass ended.", now)
    if report.exit_code == 0:
        gauge("last_success_timestamp_seconds", "When the last pass that exited 0 ended.", now)
    gauge("exit_code", "The last pass's exit code.", report.exit_code)
    gauge("duration_seconds", "How long the last pass took.", report.seconds)
    gauge("wiped_files", "Files removed by the last pass.", sum(v.files for v in report.volumes))
    gauge("wiped_bytes", "Bytes freed by the last pass.", sum(v.bytes for v in report.volumes))
    volumes = Gauge(
        f"{PREFIX}_volumes",
        "Volumes by outcome in the last pass.",
        ["outcome"],
        registry=registry,
    )
    counts = report.counts()
    # Every outcome is sent, zeros included, so a POST replaces last pass's counts completely.
    for outcome in OUTCOMES:
        volumes.labels(outcome=outcome).set(counts.get(outcome, 0))
    return registry


def with_basic_auth(gateway: str) -> tuple[str, Callable[..., Any]]:
    """The gateway URL without user:password, and the handler that sends them as basic auth.

    urllib takes `user:pass@host` for the host name, so an URL with credentials would never
    reach the gateway; the credentials go in an Authorization header instead.
    """
    parts = urlsplit(gateway)
    if parts.username is None:
        return gateway, default_handler
    user, password = unquote(parts.username), unquote(parts.password or "")
    netloc = parts.netloc.rpartition("@")[2]

    def handler(url: str, method: str, timeout: float | None, headers: Any, data: bytes) -> Any:
        return basic_auth_handler(url, method, timeout, headers, data, user, password)

    return urlunsplit(parts._replace(netloc=netloc)), handler


def push(gateway: str, report: RunReport, *, namespace: str, now: float | None = None) -> bool:
    """Push the pass's metrics; log and return False on failure, never raise."""
    registry = build_registry(report, now=time.time() if now is None else now)
    send = push_to_gateway if report.exit_code == 0 else pushadd_to_gateway
    url, handler = with_basic_auth(gateway)
    try:
        send(
            url,
            job=JOB,
            registry=registry,
            grouping_key={"namespace": namespace},
            timeout=PUSH_TIMEOUT,
            handler=handler,
        )
    except Exception as exc:  # any failure here only costs the metrics
        # The URL may carry user:password (basic auth to the gateway): never print it.
        log.error("could not push metrics to %s: %s", mask_url(gateway), redact(str(exc)))
        return False
    log.debug("pushed metrics to %s", mask_url(gateway))
    return True
