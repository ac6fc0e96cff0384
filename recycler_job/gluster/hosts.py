"""Gluster host lists: validated, turned into a mount source and options, compared by address."""

import ipaddress
import logging
import socket
from collections.abc import Iterable, Sequence

from recycler_job import names
from recycler_job.gluster.errors import GlusterError, VolumeIdentityError
from recycler_job.sources.glusterfs import GlusterSource

log = logging.getLogger(__name__)


def _check_host(host: str) -> str:
    try:
        return names.check_host(host)
    except ValueError:
        raise GlusterError(f"invalid gluster host {host!r}") from None


def check_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    """`hosts` validated (no character that could break a mount option), duplicates dropped.

    IPv6 addresses are returned without brackets. Raises GlusterError when a host is
    malformed or the list is empty.
    """
    checked: list[str] = []
    for host in hosts:
        valid = _check_host(host)
        if valid not in checked:
            checked.append(valid)
    if not checked:
        raise GlusterError("no gluster host given")
    return tuple(checked)


def _backup_host(host: str) -> str:
    # mount.glusterfs splits backup-volfile-servers on ':' outside of [...] brackets.
    return f"[{host}]" if ":" in host else host


def mount_source_and_options(hosts: Sequence[str], source: GlusterSource) -> tuple[str, list[str]]:
    """The `mount` source `host:/volume[/subdir]` and the `-o` options for `source`.

    The first host serves the volume file; every further host, however many, goes into
    `backup-volfile-servers=h2:h3:...`.
    """
    valid = check_hosts(hosts)
    mount_source = f"{valid[0]}:{source.mount_path}"
    options: list[str] = []
    if len(valid) > 1:
        options.append("backup-volfile-servers=" + ":".join(_backup_host(h) for h in valid[1:]))
    return mount_source, options


def expected_sources(hosts: Sequence[str], source: GlusterSource) -> list[str]:
    """What mountinfo may show as the source of a mount of `source`: `host:/volume[/subdir]`.

    mountinfo shows the first host only (the one given to `mount`), also when the volume
    file came from a backup server.
    """
    return [f"{host}:{source.mount_path}" for host in check_hosts(hosts)]


def resolve_addresses(hosts: Iterable[str]) -> frozenset[str]:
    """Every IP address `hosts` resolve to (IPv4-mapped IPv6 as IPv4); unresolvable ones add
    nothing."""
    found: set[str] = set()
    for host in hosts:
        name = host.strip()
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            log.debug("cannot resolve %s", name)
            continue
        for info in infos:
            text = str(info[4][0]).split("%", 1)[0]
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                continue
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            found.add(str(address))
    return frozenset(found)


def ensure_same_pool(configured: Sequence[str], endpoints: Sequence[str], *, what: str) -> None:
    """Refuse (VolumeIdentityError) when `configured` and `endpoints` share no IP address.

    `--gluster-hosts` names the pool this tool wipes; a PV whose Endpoints (`what`) name
    other servers belongs to another pool that may hold a volume of the same name.
    """
    ours = resolve_addresses(configured)
    theirs = resolve_addresses(endpoints)
    if not ours:
        raise VolumeIdentityError(
            f"cannot resolve any of --gluster-hosts {', '.join(configured)} to compare them "
            f"with {what}"
        )
    if not theirs:
        raise VolumeIdentityError(
            f"cannot resolve any address of {what} ({', '.join(endpoints)}) to compare it "
            "with --gluster-hosts"
        )
    if not ours & theirs:
        raise VolumeIdentityError(
            f"{what} ({', '.join(sorted(theirs))}) shares no address with --gluster-hosts "
            f"({', '.join(sorted(ours))}): the PV belongs to another gluster pool"
        )
