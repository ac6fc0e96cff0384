"""The one door to the Kubernetes API.

Wraps the `openshift` DynamicClient so the rest of the program deals in plain JSON dicts and a
handful of exceptions of our own. Every request is counted (the scale benchmark reads the count)
and, with --debug, logged as method, path and status: never headers, so never a token.
"""

from __future__ import annotations

import functools
import gc
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from recycler_job.api_errors import (
    ApiStatus,
    ClusterUnavailable,
    Conflict,
    Expired,
    Invalid,
    KubeError,
    NotFound,
)

log = logging.getLogger(__name__)

LIST_PAGE_SIZE = 2000
"""Items per list page: fewer round trips than the usual 500 for a little more peak memory (one
page of raw JSON and its dicts are held at once); the trade-off is measured in
docs/performance.md ("Idle pass over 10,000 PVs")."""
TIMEOUT_ENV = "GLUSTER_RECYCLER_TEST_REQUEST_TIMEOUT"
"""A test hook like failpoints.ENV: unset in production. Tests that hold back an API reply
set a short timeout here instead of waiting 30 s."""


def _request_timeout(default: float = 30.0) -> float:
    try:
        value = float(os.environ.get(TIMEOUT_ENV) or default)
    except ValueError:
        return default
    return value if 0 < value <= default else default


REQUEST_TIMEOUT = _request_timeout()
"""Seconds per attempt of an ordinary request (30). Lease renewals use a much shorter one
(lease.renew_timeout), so a hung API server cannot hold up the renewer past its interval."""
RETRIED_METHODS = frozenset({"GET", "HEAD"})
"""The only methods sent again after their request may have reached the server."""
LIST_RESTARTS = 5
WATCH_CONNECT_TIMEOUT = 2.0
"""Seconds to connect a watch: a watch that cannot be resumed within 2 s stops a wipe anyway
(view.py), so waiting longer for a connection gains nothing."""


@dataclass(frozen=True)
class Listed:
    """A whole list: its items, the pages it took and its resourceVersion."""

    items: list[dict[str, Any]]
    pages: int
    resource_version: str


@dataclass(frozen=True)
class ResourceKind:
    """A resource the recycler uses, by API version and kind."""

    api_version: str
    kind: str


PV = ResourceKind("v1", "PersistentVolume")
PVC = ResourceKind("v1", "PersistentVolumeClaim")
ENDPOINTS = ResourceKind("v1", "Endpoints")
CONFIGMAP = ResourceKind("v1", "ConfigMap")
EVENT = ResourceKind("v1", "Event")
LEASE = ResourceKind("coordination.k8s.io/v1", "Lease")

# Where each kind above lives: (prefix, group, version, plural, namespaced). These are GA APIs
# whose paths never change, so the client needs no discovery for them. The DynamicClient's own
# discovery costs ~25 requests a run on a current cluster (/version, /apis, then every group
# with a v1 version while it searches for "v1") and caches the answer in $TMPDIR, which a
# CronJob pod never has from an earlier run.
_KNOWN_RESOURCES: dict[ResourceKind, tuple[str, str, str, str, bool]] = {
    PV: ("api", "", "v1", "persistentvolumes", False),
    PVC: ("api", "", "v1", "persistentvolumeclaims", True),
    ENDPOINTS: ("api", "", "v1", "endpoints", True),
    CONFIGMAP: ("api", "", "v1", "configmaps", True),
    EVENT: ("api", "", "v1", "events", True),
    LEASE: ("apis", "coordination.k8s.io", "v1", "leases", True),
}
_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class _KnownResources:
    """A DynamicClient discoverer that answers from `_KNOWN_RESOURCES` without any request.

    Any other kind falls back to the client's usual lazy discovery, created on first use.
    """

    def __init__(self, client: Any, cache_file: str | None) -> None:
        self.client = client
        self.cache_file = cache_file
        self._fallback: Any = None

    def _discovering(self) -> Any:
        if self._fallback is None:
            from openshift.dynamic.discovery import LazyDiscoverer  # noqa: PLC0415

            self._fallback = LazyDiscoverer(self.client, self.cache_file)
        return self._fallback

    def get(self, **kwargs: Any) -> Any:
        """The Resource for `api_version` and `kind` (the only lookups Kube makes)."""
        kind = ResourceKind(str(kwargs.get("api_version")), str(kwargs.get("kind")))
        known = _KNOWN_RESOURCES.get(kind) if set(kwargs) == {"api_version", "kind"} else None
        if known is None:
            return self._discovering().get(**kwargs)
        from openshift.dynamic import Resource  # noqa: PLC0415

        prefix, group, version, plural, namespaced = known
        return Resource(
            prefix=prefix,
            group=group,
            api_version=version,
            kind=kind.kind,
            namespaced=namespaced,
            verbs=_VERBS,
            name=plural,
            preferred=True,
            client=self.client,
        )

    def search(self, **kwargs: Any) -> Any:
        return self._discovering().search(**kwargs)

    @property
    def version(self) -> Any:
        return self._discovering().version


def retry_policy() -> Any:
    """urllib3's retries for every request: a read may be sent twice, a write never.

    A write whose reply was lost (read timeout, dropped connection) may have been carried out:
    a DELETE sent again then answers 404 or 409 for a PV it removed itself, and a PUT again
    could undo a newer write. So only GET/HEAD are resent after the request went out; a
    connection that could not be opened (nothing was sent) is retried once for every method.
    Errors urllib3 counts as neither (an SSL error mid-reply) are not retried at all.
    """
    from urllib3.util.retry import Retry  # noqa: PLC0415 (keeps --help fast)

    return Retry(
        total=1,
        connect=1,
        read=1,
        other=0,
        status=0,
        redirect=False,
        allowed_methods=RETRIED_METHODS,
    )


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while large API lists are read and decoded.

    Decoding 10,000 PVs allocates ~10^6 dicts and lists; every ~700 allocations the collector
    runs and, every few runs, walks all of them again. JSON trees hold no reference cycles, so
    there is nothing for it to find; reference counting still frees them. This halves the CPU
    of a volume's re-check (which lists every claim) on 10,000 PVs. Nesting and concurrent
    callers are fine: only a caller that found it enabled turns it back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def watch_stream() -> Any:
    """A stream for `Kube.watch(..., watcher=...)` that another thread can `stop()`: the
    client's own `kubernetes.watch.Watch`, made here so only this module imports the client."""
    from kubernetes import watch as k8s_watch  # noqa: PLC0415 (keeps --help fast)

    return k8s_watch.Watch()


def _translate(exc: BaseException, what: str) -> KubeError:
    """Turn a client exception into one of ours, with a one-line message and the API's Status."""
    status = getattr(exc, "status", None)
    api_status = _api_status(exc, status)
    reason = (api_status.message if api_status else "") or _first_line(exc)
    message = f"{what}: {reason}"
    if status is None:
        return ClusterUnavailable(f"{what}: cannot reach the API server ({reason})", transient=True)
    transient = isinstance(status, int) and (status >= 500 or status == 429)
    return _BY_STATUS.get(status, KubeError)(message, status, api_status, transient=transient)


_BY_STATUS: dict[int, type[KubeError]] = {
    401: ClusterUnavailable,
    403: ClusterUnavailable,
    404: NotFound,
    409: Conflict,
    410: Expired,
    422: Invalid,
}


def _api_status(exc: BaseException, code: object) -> ApiStatus | None:
    """The Status object in the response body, or what the response line says; None without
    an HTTP status (no answer at all)."""
    if not isinstance(code, int):
        return None
    body = getattr(exc, "body", None)
    try:
        data = json.loads(body) if isinstance(body, (str, bytes)) and body else {}
    except ValueError:  # not JSON: a proxy's page, say
        data = {}
    if not isinstance(data, dict):
        data = {}
    reason, message, details = data.get("reason"), data.get("message"), data.get("details")
    return ApiStatus(
        code=code,
        reason=reason if isinstance(reason, str) else str(getattr(exc, "reason", "") or ""),
        message=message if isinstance(message, str) else "",
        details=details if isinstance(details, dict) else {},
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Kube:
    """Typed, counted access to the few API resources a pass needs."""

    def __init__(self, dynamic_client: Any) -> None:
        self._dyn = dynamic_client
        self._resources: dict[ResourceKind, Any] = {}
        self._lock = threading.Lock()
        self.requests = 0
        self.watches = 0  # of `requests`, the watch requests

    @classmethod
    def connect(cls, kubeconfig: str | None) -> Kube:
        """Build a client: the kubeconfig given, else in-cluster, else the usual kubeconfig."""
        from kubernetes import client as k8s_client  # noqa: PLC0415 (keeps --help fast)
        from kubernetes import config as k8s_config  # noqa: PLC0415
        from openshift.dynamic import DynamicClient  # noqa: PLC0415

        # Set before the client exists: its connection pool copies `retries` when created
        # (urllib3's default is 3 retries, which would stretch each request's timeout 4-fold,
        # and resends DELETE and PUT after a lost reply).
        cfg = k8s_client.Configuration()
        cfg.retries = retry_policy()
        cfg.debug = False  # the client's debug output prints bearer tokens
        try:
            if kubeconfig:
                api_client = k8s_config.new_client_from_config(
                    config_file=kubeconfig, client_configuration=cfg
                )
            else:
                try:
                    k8s_config.load_incluster_config(client_configuration=cfg)
                    api_client = k8s_client.ApiClient(configuration=cfg)
                except k8s_config.ConfigException:
                    api_client = k8s_config.new_client_from_config(client_configuration=cfg)
        except (k8s_config.ConfigException, OSError, ValueError) as exc:
            raise ClusterUnavailable(f"cannot load cluster credentials: {exc}") from exc
        api_client.configuration.debug = False
        try:
            dyn = DynamicClient(api_client, discoverer=_KnownResources)
        except Exception as exc:
            raise _translate(exc, "API discovery") from exc
        return cls(dyn)

    # ---- low level -------------------------------------------------------------------------

    def _resource(self, kind: ResourceKind) -> Any:
        with self._lock:
            res = self._resources.get(kind)
        if res is None:
            try:
                res = self._dyn.resources.get(api_version=kind.api_version, kind=kind.kind)
            except Exception as exc:
                raise _translate(exc, f"discover {kind.kind}") from exc
            with self._lock:
                self._resources[kind] = res
        return res

    def _call(self, verb: str, kind: ResourceKind, what: str, **kwargs: Any) -> dict[str, Any]:
        resource = self._resource(kind)
        start = time.monotonic()
        with self._lock:
            self.requests += 1
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        status: int | str = "error"
        try:
            response = getattr(self._dyn, verb)(resource, serialize=False, **kwargs)
            status = int(response.status)
            data = response.data
        except Exception as exc:
            status = getattr(exc, "status", None) or type(exc).__name__
            raise _translate(exc, what) from exc
        finally:
            log.debug(
                "api %s %s -> %s (%.0f ms)",
                verb.upper(),
                what,
                status,
                (time.monotonic() - start) * 1000,
            )
        result: dict[str, Any] = json.loads(data) if data else {}
        return result

    def list_items(
        self,
        kind: ResourceKind,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        page_size: int = LIST_PAGE_SIZE,
    ) -> tuple[list[dict[str, Any]], int]:
        """Every item of a paginated list (`limit`/`continue`) and the number of pages read.

        An expired continue token (410) restarts the list from the first page, dropping what
        was read: mixing pages from two snapshots could miss or repeat objects.

        The cyclic garbage collector is paused meanwhile (see `gc_paused`). Items come without
        `metadata.managedFields` (server-side apply bookkeeping, about half of each object's
        JSON, which nothing here reads): dropped page by page, that keeps 10,000 PVs and their
        claims ~60 MiB smaller. `get` returns objects whole.
        """
        listed = self.list_collection(
            kind, namespace=namespace, label_selector=label_selector, page_size=page_size
        )
        return listed.items, listed.pages

    def list_collection(
        self,
        kind: ResourceKind,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = LIST_PAGE_SIZE,
        keep: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Listed:
        """`list_items`, with the list's resourceVersion (where a watch resumes from) and
        `keep` applied to each item page by page (so only what it keeps stays in memory)."""
        with gc_paused():
            return self._list_pages(
                kind,
                {"namespace": namespace, "label_selector": label_selector},
                field_selector,
                page_size,
                keep,
            )

    def _list_pages(
        self,
        kind: ResourceKind,
        where: dict[str, str | None],
        field_selector: str | None,
        page_size: int,
        keep: Callable[[dict[str, Any]], dict[str, Any]] | None,
    ) -> Listed:
        items: list[dict[str, Any]] = []
        pages = restarts = 0
        token: str | None = None
        while True:
            try:
                body = self._call(
                    "get",
                    kind,
                    f"list {kind.kind}",
                    **where,
                    field_selector=field_selector,
                    limit=page_size,
                    _continue=token,
                )
            except Expired:
                restarts += 1
                if restarts > LIST_RESTARTS:
                    raise
                log.info("list %s: continue token expired; restarting the list", kind.kind)
                items, token = [], None
                continue
            pages += 1
            page = body.get("items") or []
            for item in page:
                meta = item.get("metadata")
                if isinstance(meta, dict):
                    meta.pop("managedFields", None)
            items.extend(page if keep is None else [keep(item) for item in page])
            list_meta = body.get("metadata") or {}
            token = list_meta.get("continue") or None
            if not token:
                return Listed(items, pages, str(list_meta.get("resourceVersion") or ""))

    def collection_version(self, kind: ResourceKind) -> str:
        """The resourceVersion a collection has now: one `limit=1` list, which the API server
        reads from etcd (a quorum read), never from its watch cache."""
        body = self._call("get", kind, f"list {kind.kind} (limit=1)", limit=1)
        return str((body.get("metadata") or {}).get("resourceVersion") or "")

    def watch(
        self,
        kind: ResourceKind,
        *,
        resource_version: str,
        timeout_seconds: int,
        namespace: str | None = None,
        field_selector: str | None = None,
        watcher: Any = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, object) of each event of one watch request from `resource_version`, with
        bookmarks, until the server ends it after `timeout_seconds`.

        Uses the client's own `kubernetes.watch.Watch` for the stream (pass one as `watcher`
        to be able to `stop()` it from another thread); an ERROR event (410 Gone: the version
        is too old) raises our `Expired`. The watch is not resumed here: the caller decides
        (view.py relists after a 410). Each call counts as one request.
        """
        resource = self._resource(kind)
        with self._lock:
            self.requests += 1
            self.watches += 1
        stream = watcher if watcher is not None else watch_stream()
        what = f"watch {kind.kind}"
        log.debug("api WATCH %s from resourceVersion %s", kind.kind, resource_version)
        try:
            for event in stream.stream(
                functools.partial(self._dyn.get, resource),
                namespace=namespace,
                field_selector=field_selector,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout_seconds,
                serialize=False,
                _request_timeout=(WATCH_CONNECT_TIMEOUT, timeout_seconds + 3.0),
            ):
                obj = event.get("raw_object")
                yield str(event.get("type")), obj if isinstance(obj, dict) else {}
        except KubeError:
            raise
        except Exception as exc:
            raise _translate(exc, what) from exc

    def get(
        self,
        kind: ResourceKind,
        name: str,
        namespace: str | None = None,
        *,
        timeout: float = REQUEST_TIMEOUT,
    ) -> dict[str, Any]:
        """The object, or NotFound."""
        where = f"{namespace}/{name}" if namespace else name
        return self._call(
            "get",
            kind,
            f"get {kind.kind} {where}",
            name=name,
            namespace=namespace,
            _request_timeout=timeout,
        )

    def get_or_none(
        self,
        kind: ResourceKind,
        name: str,
        namespace: str | None = None,
        *,
        timeout: float = REQUEST_TIMEOUT,
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self.get(kind, name, namespace, timeout=timeout)
        except NotFound:
            return None

    def create(
        self,
        kind: ResourceKind,
        body: dict[str, Any],
        namespace: str | None = None,
        *,
        server_dry_run: bool = False,
    ) -> dict[str, Any]:
        """POST a new object; Conflict when it already exists. `server_dry_run`: see
        `merge_patch`."""
        name = (body.get("metadata") or {}).get("name") or (body.get("metadata") or {}).get(
            "generateName", "?"
        )
        return self._call(
            "create",
            kind,
            f"create {kind.kind} {name}" + (" (dry run)" if server_dry_run else ""),
            body=body,
            namespace=namespace,
            dry_run="All" if server_dry_run else None,
        )

    def replace(
        self,
        kind: ResourceKind,
        body: dict[str, Any],
        namespace: str | None = None,
        *,
        timeout: float = REQUEST_TIMEOUT,
    ) -> dict[str, Any]:
        """PUT an object; the body must carry metadata.resourceVersion (PVs allow
        unconditional updates, so without it a concurrent change would be silently lost).

        `timeout` bounds the request (a write is sent once, see `retry_policy`): a Lease
        renewal passes one shorter than its renew interval."""
        meta = body.get("metadata") or {}
        if not meta.get("resourceVersion"):
            raise ValueError("replace needs metadata.resourceVersion")
        return self._call(
            "replace",
            kind,
            f"replace {kind.kind} {meta.get('name')}",
            body=body,
            namespace=namespace,
            _request_timeout=timeout,
        )

    def merge_patch(
        self,
        kind: ResourceKind,
        name: str,
        patch: dict[str, Any],
        namespace: str | None = None,
        *,
        server_dry_run: bool = False,
    ) -> dict[str, Any]:
        """JSON merge patch. Callers put metadata.resourceVersion in `patch` as a precondition.

        `server_dry_run` asks the server to authorize, admit and validate the write without
        storing it (dryRun=All): a rehearsal before an irreversible step, not the run's
        `--dry-run`, which sends no write at all.
        """
        if not (patch.get("metadata") or {}).get("resourceVersion"):
            raise ValueError("merge_patch needs metadata.resourceVersion as a precondition")
        return self._call(
            "patch",
            kind,
            f"patch {kind.kind} {name}" + (" (dry run)" if server_dry_run else ""),
            name=name,
            namespace=namespace,
            body=patch,
            content_type="application/merge-patch+json",
            dry_run="All" if server_dry_run else None,
        )

    def delete(
        self,
        kind: ResourceKind,
        name: str,
        *,
        uid: str,
        resource_version: str,
        namespace: str | None = None,
        server_dry_run: bool = False,
    ) -> dict[str, Any]:
        """DELETE with uid and resourceVersion preconditions: Conflict when either changed.

        Sent once: after any error the object may or may not be gone, and only reading it
        again can tell (journal.Journal.recreate does). `server_dry_run`: see `merge_patch`."""
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"uid": uid, "resourceVersion": resource_version},
        }
        if server_dry_run:
            body["dryRun"] = ["All"]
        return self._call(
            "delete",
            kind,
            f"delete {kind.kind} {name}" + (" (dry run)" if server_dry_run else ""),
            name=name,
            namespace=namespace,
            body=body,
        )
