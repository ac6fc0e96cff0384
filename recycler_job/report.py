"""What a pass did, for people (one summary line, the termination message) and for tools (JSON)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from recycler_job.logs import redact

STDOUT = "-"  # --report-file -: the report is stdout's only content (the summary goes to stderr)
TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LIMIT = 4096  # the kubelet keeps at most 4 KiB

_T = TypeVar("_T")
# What can become of a volume in one pass (`VolumeResult.outcome`), in the order reports list them.
OUTCOMES = (
    "recycled",
    "would-recycle",
    "would-refuse",
    "busy",
    "failed",
    "interrupted",
    "waiting",
    "skipped",
)


@dataclass
class VolumeResult:
    """One PV's fate in this pass.

    `outcome` is one of: recycled, would-recycle and would-refuse (dry run: a volume in use),
    busy (in use: gluster clients connected, nothing removed; not a failure), failed,
    interrupted, waiting, skipped.
    """

    pv: str
    decision: str
    reason: str
    outcome: str
    error: str = ""
    volume_id: str = ""  # gluster's Volume ID of the mounted volume, once proven
    files: int = 0
    dirs: int = 0
    bytes: int = 0
    step: str = ""  # the step that was running when it failed or was interrupted
    durations: dict[str, float] = field(default_factory=dict)


def timed(
    result: VolumeResult, step: str, func: Callable[..., _T], *args: Any, **kwargs: Any
) -> _T:
    """`func(*args, **kwargs)`, its duration recorded as `step`; a failure names the step."""
    started = time.monotonic()
    try:
        return func(*args, **kwargs)
    except BaseException:
        result.step = result.step or step  # the innermost step names the failure
        raise
    finally:
        result.durations[step] = round(time.monotonic() - started, 3)


@dataclass
class RunReport:
    """The whole pass."""

    identity: str
    dry_run: bool
    mode: str
    lease: str = "not-taken"  # acquired | held-by:<identity> | not-taken | lost
    # completed | skipped | interrupted | cluster-unavailable | lease-lost | error (unexpected)
    outcome: str = "completed"
    error: str = ""
    exit_code: int = 0
    started: str = ""
    seconds: float = 0.0
    pvs_seen: int = 0
    list_pages: int = 0
    api_requests: int = 0
    replayed: list[str] = field(default_factory=list)
    stale_mounts_cleaned: list[str] = field(default_factory=list)
    volumes: list[VolumeResult] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        """How many volumes ended in each outcome."""
        return Counter(v.outcome for v in self.volumes)

    def summary_line(self) -> str:
        """One line an admin can read in `kubectl logs`."""
        if self.outcome == "skipped":
            return f"gluster-recycler: skipped: {self.lease.replace('held-by:', 'lease held by ')}"
        if self.outcome == "cluster-unavailable":
            return f"gluster-recycler: cannot use the cluster: {self.error}"
        counts = self.counts()
        parts = [
            f"{counts.get(name, 0)} {name}"
            for name in OUTCOMES
            if counts.get(name, 0) or name in ("recycled", "failed")
        ]
        removed = sum(v.files for v in self.volumes)
        freed = sum(v.bytes for v in self.volumes)
        prefix = "dry run: " if self.dry_run else ""
        tail = f"; {self.outcome}" if self.outcome != "completed" else ""
        if self.outcome in ("error", "lease-lost"):
            tail = f"; stopped: {self.error}"
        return (
            f"gluster-recycler: {prefix}{self.pvs_seen} PVs seen; {', '.join(parts)}; "
            f"{removed} files ({freed} bytes) removed in {self.seconds:.1f}s{tail}"
        )

    def failed_lines(self) -> list[str]:
        return [f"pv/{v.pv}: {v.error}" for v in self.volumes if v.outcome == "failed"]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["counts"] = dict(self.counts())
        data["summary"] = self.summary_line()
        return data

    def json_text(self) -> str:
        return redact(json.dumps(self.to_json(), indent=2, sort_keys=True)) + "\n"

    def write_json(self, path: str) -> None:
        """Write the report atomically so a reader never sees half of it; `-` is stdout."""
        if path == STDOUT:
            sys.stdout.write(self.json_text())
            sys.stdout.flush()
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(self.json_text())
        os.replace(tmp, target)

    def termination_message(self) -> str:
        """The summary and the failures, cut to what the kubelet keeps."""
        text = redact("\n".join([self.summary_line(), *self.failed_lines()]))
        data = text.encode()[:TERMINATION_LIMIT]
        return data.decode(errors="ignore")

    def write_termination_log(self, path: str | None = None) -> bool:
        """Write the termination message when the file exists (it does in a pod)."""
        path = TERMINATION_LOG if path is None else path
        if not os.path.exists(path):
            return False
        try:
            with open(path, "w") as fh:
                fh.write(self.termination_message())
        except OSError:
            return False
        return True
