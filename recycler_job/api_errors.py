"""The API's failures as the rest of the program sees them: one class per reason it acts on,
each keeping the server's own Status (kube.py translates the client's exceptions into these)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recycler_job.errors import VolumeError


@dataclass(frozen=True)
class ApiStatus:
    """The API server's own account of a failed request (a metav1.Status), kept as sent.

    `code` is the HTTP status; `reason` the machine-readable cause (`Forbidden`, `NotFound`,
    `Conflict`, ...); `details` names the object (`name`, `group`, `kind`) and may carry
    `causes` or `retryAfterSeconds`.
    """

    code: int
    reason: str = ""
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


class KubeError(VolumeError):
    """An API request failed for a reason the caller may want to report.

    `transient` tells a failure that may pass by itself (no answer, a timeout, 5xx, 429) from
    a refusal that stays until someone changes something (credentials, RBAC, a bad object),
    so retries and exit codes can tell them apart. It is an attribute, not a class of its own,
    because class names are part of messages admins already read.
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        api_status: ApiStatus | None = None,
        *,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.api_status = api_status
        self.transient = transient


class NotFound(KubeError):
    """404: the object does not exist."""


class Conflict(KubeError):
    """409: a precondition (uid, resourceVersion) failed, or the object already exists."""


class Expired(KubeError):
    """410: a list continue token expired."""


class Invalid(KubeError):
    """422: the server rejected the object."""


class ClusterUnavailable(KubeError):
    """The API cannot be used at all: unreachable (`transient`; no status), or unauthorized or
    forbidden (permanent; status 401 or 403, and the server's Status)."""
