"""One root for the package's exceptions, the tree errors.py draws, and API errors sorted into
permanent and transient."""

import importlib
import inspect
import json
import pkgutil
import re

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import api_exception
from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError

import recycler_job
from recycler_job import act, errors, kube, lease, tls, view
from recycler_job.api_errors import (
    ApiStatus,
    ClusterUnavailable,
    Conflict,
    Expired,
    Invalid,
    KubeError,
    NotFound,
)
from recycler_job.errors import RecyclerError, VolumeError
from recycler_job.gluster.errors import GlusterError
from recycler_job.wipe import engine as wipe_engine


def _package_exceptions() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(recycler_job.__path__, "recycler_job."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found += [
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, BaseException) and obj.__module__ == info.name
        ]
    return found


def test_every_exception_of_the_package_derives_from_the_root() -> None:
    classes = _package_exceptions()
    assert len(classes) >= 20
    strays = [f"{c.__module__}.{c.__name__}" for c in classes if not issubclass(c, RecyclerError)]
    assert not strays, strays


def _drawn_parents() -> dict[str, set[str]]:
    """Each class name in errors.py's drawing -> the names drawn as its parent."""
    doc = errors.__doc__ or ""
    lines = [
        line for line in doc.splitlines() if re.match(r"\s+(RecyclerError\b|[│├└ ]*── )", line)
    ]
    parents: dict[str, set[str]] = {}
    stack: list[tuple[int, str]] = []  # (column, name) of the single names above
    for line in lines:
        column = line.index("── ") + 3 if "── " in line else len(line) - len(line.lstrip())
        label = re.split(r"\s{2,}", line[column:].strip())[0]
        names = [re.sub(r"\s*\(.*\)", "", name).strip() for name in label.split(",")]
        while stack and stack[-1][0] >= column:
            stack.pop()
        for name in names:
            parents.setdefault(name, set()).add(stack[-1][1] if stack else "Exception")
        if len(names) == 1:
            stack.append((column, names[0]))
    return parents


def test_the_drawn_tree_is_the_tree_of_the_code() -> None:
    """errors.py's drawing names every exception class, each under its real base class."""
    drawn = _drawn_parents()
    assert drawn["VolumeError"] == {"RecyclerError"}
    classes = [c for c in _package_exceptions() if c is not RecyclerError]
    for cls in classes:
        assert cls.__name__ in drawn, f"{cls.__module__}.{cls.__name__} is not drawn"
        bases = {base.__name__ for base in cls.__bases__}
        assert bases & drawn[cls.__name__], f"{cls.__name__}: drawn under {drawn[cls.__name__]}"
    assert set(drawn) - {"RecyclerError"} == {cls.__name__ for cls in classes}


def test_what_stops_one_volume_is_one_family() -> None:
    """The kinds act.py maps to a volume's outcome all derive from VolumeError."""
    for kind in (
        act.VolumeFailure,
        act.Interrupted,
        act.DeadlineReached,
        view.NotCurrent,
        lease.LeaseLost,
        tls.TlsError,
        KubeError,
        GlusterError,
        wipe_engine.WipeError,
    ):
        assert issubclass(kind, VolumeError), kind


def _api_error(code: int, reason: str, body: dict[str, object] | None) -> BaseException:
    """The exception the dynamic client raises for an HTTP error response."""
    error = ApiException(status=code, reason=reason)
    error.body = json.dumps(body) if body is not None else None
    try:
        raise error
    except ApiException as exc:
        return api_exception(exc)  # type: ignore[no-any-return]


DETAILS = {"kind": "persistentvolumes"}
FORBIDDEN: dict[str, object] = {
    "kind": "Status",
    "apiVersion": "v1",
    "status": "Failure",
    "message": 'persistentvolumes is forbidden: User "system:serviceaccount:x:y" cannot list',
    "reason": "Forbidden",
    "details": DETAILS,
    "code": 403,
}


@pytest.mark.parametrize(
    ("code", "reason", "kind", "transient"),
    [
        (401, "Unauthorized", ClusterUnavailable, False),
        (403, "Forbidden", ClusterUnavailable, False),
        (404, "NotFound", NotFound, False),
        (409, "Conflict", Conflict, False),
        (410, "Expired", Expired, False),
        (422, "Invalid", Invalid, False),
        (400, "BadRequest", KubeError, False),
        (429, "TooManyRequests", KubeError, True),
        (500, "InternalError", KubeError, True),
        (503, "ServiceUnavailable", KubeError, True),
        (504, "Timeout", KubeError, True),
    ],
)
def test_http_errors_keep_the_api_status_and_their_class(
    code: int, reason: str, kind: type[KubeError], transient: bool
) -> None:
    body = {**FORBIDDEN, "code": code, "reason": reason, "message": f"it failed with {code}"}
    error = kube._translate(_api_error(code, reason, body), "list PersistentVolume")
    assert type(error) is kind
    assert error.transient is transient
    assert isinstance(error, RecyclerError)
    assert error.status == code
    assert error.api_status == ApiStatus(
        code=code, reason=reason, message=f"it failed with {code}", details=DETAILS
    )
    assert str(error) == f"list PersistentVolume: it failed with {code}"


def test_forbidden_is_permanent_and_stops_the_pass() -> None:
    error = kube._translate(_api_error(403, "Forbidden", FORBIDDEN), "list PersistentVolume")
    assert isinstance(error, ClusterUnavailable) and not error.transient
    assert error.api_status is not None
    assert (error.api_status.code, error.api_status.reason) == (403, "Forbidden")
    assert error.api_status.details == {"kind": "persistentvolumes"}
    assert "is forbidden" in str(error)


def test_an_error_without_a_status_body_keeps_the_response_line() -> None:
    error = kube._translate(_api_error(503, "Service Unavailable", None), "get Lease x/y")
    assert type(error) is KubeError and error.transient
    assert error.api_status == ApiStatus(code=503, reason="Service Unavailable")
    assert str(error) == "get Lease x/y: 503"


@pytest.mark.parametrize(
    "cause",
    [
        MaxRetryError(None, "/api/v1/persistentvolumes", NewConnectionError(None, "refused")),
        ReadTimeoutError(None, "/api/v1/persistentvolumes", "Read timed out."),
        ConnectionRefusedError(111, "Connection refused"),
    ],
)
def test_no_answer_is_transient_and_stops_the_pass(cause: BaseException) -> None:
    error = kube._translate(cause, "list PersistentVolume")
    assert type(error) is ClusterUnavailable and error.transient
    assert error.status is None and error.api_status is None
    assert str(error).startswith("list PersistentVolume: cannot reach the API server (")


def test_a_body_that_is_not_a_status_is_not_taken_for_one() -> None:
    """A proxy in front of the API server may answer with its own page."""
    raw = ApiException(status=502, reason="Bad Gateway")
    raw.body = b"<html>bad gateway</html>"
    error = kube._translate(raw, "get Lease x/y")
    assert error.transient
    assert error.api_status == ApiStatus(code=502, reason="Bad Gateway")
