"""What a pass costs the API server, phase by phase: before, during and after its wipes.

Used by bench.scale. The pass runs with two failpoints that only log and pause
(``wipe-start``: a volume's last re-check, watches and wipe begin; ``wipe-end``: its last
probe answered and its watches stopped). On each of these lines, while the pass pauses, the
benchmark scrapes the API server's ``/metrics`` (as admin) and notes how far the audit log
goes. The differences between consecutive scrapes are then put in a phase:

* ``before``: from the start of the pass to the first ``wipe-start`` (lists, decisions, the
  first volume's checks and mount);
* ``during``: while at least one volume is between its ``wipe-start`` and ``wipe-end``;
* ``between``: no volume wiping, another still to start (a release, the next volume's checks
  and mount; only with ``--parallel 1``, or when a wipe ends before the next one starts);
* ``after``: from the last ``wipe-end`` to the exit (release, Event, the Lease given back).

Counted at the API server: ``apiserver_request_total`` (every client: the API server's own
lease renewals are in it) and ``apiserver_response_sizes`` (bytes of every response but
watches), by verb and resource; ``apiserver_watch_events_sizes`` (bytes sent on watches, by
kind). The audit log adds the same requests made by the recycler's own user only. Watch
requests are reported apart ("beyond the watches").
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.common import GNU_TIME, REPO

MARK_START = "failpoint wipe-start"
MARK_END = "failpoint wipe-end"
PAUSE_S = 1.5  # the failpoints' sleep: the scrape is made while the pass waits
SETTLE_S = 0.3  # after the line: the request before it is counted by then
FAILPOINTS = f"wipe-start=sleep:{PAUSE_S},wipe-end=sleep:{PAUSE_S}"
PHASES = ("before", "during", "between", "after")

_METRIC = re.compile(
    r"^(apiserver_request_total|apiserver_response_sizes_sum|apiserver_watch_events_sizes_sum)"
    r"\{([^}]*)\} (\S+)$"
)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


class Scraper(Protocol):
    def raw(self, path: str) -> bytes: ...


def scrape(api: Scraper) -> dict[tuple[str, str, str], float]:
    """``(kind, VERB, resource[/subresource])`` -> value, kind ``requests`` | ``bytes`` |
    ``watch_bytes``; requests to non-resource paths (``/metrics`` itself) are left out."""
    out: dict[tuple[str, str, str], float] = {}
    for line in api.raw("/metrics").decode().splitlines():
        m = _METRIC.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(2)))
        value = float(m.group(3))
        if m.group(1) == "apiserver_watch_events_sizes_sum":
            key = ("watch_bytes", "WATCH", labels.get("kind", "?"))
            out[key] = out.get(key, 0.0) + value
            continue
        resource = labels.get("resource", "")
        if not resource:
            continue
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        kind = "requests" if m.group(1) == "apiserver_request_total" else "bytes"
        key = (kind, labels.get("verb", "?"), resource)
        out[key] = out.get(key, 0.0) + value
    return out


@dataclass
class Mark:
    at: float  # time.monotonic()
    metrics: dict[tuple[str, str, str], float]
    audit_offset: int
    active: int  # volumes between wipe-start and wipe-end after this mark


@dataclass
class PhaseCost:
    requests: Counter[str] = field(default_factory=Counter)  # "VERB resource", watches apart
    bytes: float = 0.0
    watch_requests: int = 0
    watch_event_bytes: float = 0.0
    audit: Counter[str] = field(default_factory=Counter)  # the recycler's user only
    audit_watches: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": sum(self.requests.values()),
            "requests_by": dict(sorted(self.requests.items())),
            "bytes": int(self.bytes),
            "watch_requests": self.watch_requests,
            "watch_event_bytes": int(self.watch_event_bytes),
            "audit_requests": sum(self.audit.values()),
            "audit_requests_by": dict(sorted(self.audit.items())),
            "audit_watches": self.audit_watches,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class MarkedPass:
    code: int
    seconds: float
    peak_rss_mib: float
    starts: int
    ends: int
    phases: dict[str, PhaseCost]
    stderr: str


def _audit_between(path: Path, start: int, end: int, user: str) -> tuple[Counter[str], int]:
    """The user's requests logged between two offsets: ``VERB resource`` counts (watches
    apart: one per watch, at its ResponseStarted) and the number of watches."""
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    counts: Counter[str] = Counter()
    watches = 0
    for line in data.splitlines():
        event = json.loads(line)
        if event.get("user", {}).get("username") != user:
            continue
        verb = str(event.get("verb", "?"))
        if verb == "watch":
            watches += event.get("stage") == "ResponseStarted"
            continue
        if event.get("stage") != "ResponseComplete":
            continue
        ref = event.get("objectRef") or {}
        resource = str(ref.get("resource", "") or event.get("requestURI", "?").split("?")[0])
        if ref.get("subresource"):
            resource += "/" + ref["subresource"]
        counts[f"{verb.upper()} {resource}"] += 1
    return counts, watches


def _audit_offset(path: Path) -> int:
    """Offset of the audit log's last complete line."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    return size - len(tail) + tail.rfind(b"\n") + 1


def phase_of(index: int, marks: Sequence[Mark]) -> str:
    """The phase of the interval from ``marks[index]`` to ``marks[index + 1]``."""
    if marks[index].active > 0:
        return "during"
    if not any(m.active for m in marks[: index + 1]):
        return "before"
    if any(m.active for m in marks[index + 1 :]):
        return "between"
    return "after"


def run_marked(
    argv: Sequence[str],
    env: dict[str, str],
    api: Scraper,
    audit_log: Path,
    user: str,
    *,
    timeout: float = 1800,
) -> MarkedPass:
    """Run one pass (GNU time around it for its peak RSS) and cost each phase."""
    rss_path = Path(env.get("TMPDIR", "/tmp")) / f"bench-marked-{os.getpid()}.rss"
    rss_path.unlink(missing_ok=True)
    env = {**env, "GLUSTER_RECYCLER_FAILPOINTS": FAILPOINTS}
    wrapped = [GNU_TIME, "-f", "%M", "-o", str(rss_path), *argv]

    def mark(active: int) -> Mark:
        return Mark(time.monotonic(), scrape(api), _audit_offset(audit_log), active)

    marks = [mark(0)]
    lines: list[str] = []
    active = starts = ends = 0
    started = time.monotonic()
    proc = subprocess.Popen(
        wrapped,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        env=env,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if MARK_START in line or MARK_END in line:
            if MARK_START in line:
                active, starts = active + 1, starts + 1
            else:
                active, ends = active - 1, ends + 1
            time.sleep(SETTLE_S)
            marks.append(mark(active))
        if time.monotonic() - started > timeout:
            proc.kill()
    code = proc.wait()
    seconds = time.monotonic() - started
    time.sleep(1.0)  # the last requests' audit lines and metrics
    marks.append(mark(0))
    phases = {p: PhaseCost() for p in PHASES}
    for i in range(len(marks) - 1):
        cost = phases[phase_of(i, marks)]
        a, b = marks[i], marks[i + 1]
        cost.seconds += b.at - a.at
        for key, now in b.metrics.items():
            value = now - a.metrics.get(key, 0.0)
            if value <= 0:
                continue
            kind, verb, resource = key
            if kind == "watch_bytes":
                cost.watch_event_bytes += value
            elif kind == "bytes":
                cost.bytes += value
            elif verb == "WATCH":
                cost.watch_requests += int(value)
            else:
                cost.requests[f"{verb} {resource}"] += int(value)
        counts, watches = _audit_between(audit_log, a.audit_offset, b.audit_offset, user)
        cost.audit.update(counts)
        cost.audit_watches += watches
    peak_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        peak_kib = int(rss_path.read_text().split()[-1])
    rss_path.unlink(missing_ok=True)
    return MarkedPass(code, seconds, peak_kib / 1024, starts, ends, phases, "".join(lines))
