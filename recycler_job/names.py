"""Kubernetes object names and gluster host names, each checked in one place.

The configuration, the label selector and the mount code all take names from outside (flags,
PV specs, Endpoints) that end up in API paths, mountpoint names or `mount -o` options, so they
must agree on what a valid name is.
"""

import ipaddress
import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(_LABEL)
_SUBDOMAIN_RE = re.compile(rf"{_LABEL}(\.{_LABEL})*")
# No character that could end a mount option or start one (',', '=', ' ', a leading '-').
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")


def is_dns1123_label(value: str) -> bool:
    """A namespace name: lowercase alphanumerics and '-', at most 63 characters."""
    return len(value) <= DNS1123_LABEL_MAX and _LABEL_RE.fullmatch(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    """A PV, Lease or label-prefix name: dot-separated DNS-1123 labels, at most 253 characters."""
    return len(value) <= DNS1123_SUBDOMAIN_MAX and _SUBDOMAIN_RE.fullmatch(value) is not None


def check_host(host: str) -> str:
    """`host` as a mount can use it: a host name, IPv4 or IPv6 address (brackets dropped).

    Raises ValueError for anything else: the host goes into `mount` arguments and options.
    """
    candidate = host.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    if ":" in candidate:
        ipaddress.IPv6Address(candidate)  # raises ValueError
        return candidate
    if len(candidate) > DNS1123_SUBDOMAIN_MAX or not _HOSTNAME_RE.fullmatch(candidate):
        raise ValueError(f"not a host name or IP address: {host!r}")
    return candidate
