"""The `gluster` CLI: asked of each host in turn, its answers parsed (see parse.py)."""

import shlex
from collections.abc import Sequence

from recycler_job import tls
from recycler_job.gluster import process
from recycler_job.gluster.errors import GlusterError
from recycler_job.gluster.hosts import check_hosts
from recycler_job.gluster.parse import (
    BrickClients,
    BrickState,
    VolumeInfo,
    parse_client_list,
    parse_volume_clients,
    parse_volume_info,
    parse_volume_status,
)

_CONNECTION_FAILURES = ("Connection failed", "Request timed out", "Transport endpoint")

_cli_log_file: str | None = None


def set_cli_log_file(path: str | None) -> None:
    """Send the gluster CLI's own log to `path` (None: its default, /var/log/glusterfs/cli.log,
    which only root can write and a read-only root file system refuses)."""
    global _cli_log_file  # noqa: PLW0603 -- one setting for the whole process
    _cli_log_file = path


def run(hosts: Sequence[str], args: Sequence[str], *, timeout: float) -> str:
    """Run `gluster --mode=script --remote-host=H args...` against each host in turn.

    Moves on to the next host only when one cannot be reached; the first answer, success
    or error, is final. Raises GlusterError when the command fails or no host answers.
    """
    failures: list[str] = []
    what = shlex.join(["gluster", *args])
    for host in check_hosts(hosts):
        result = process.run(
            "gluster",
            [
                "--mode=script",
                f"--remote-host={host}",
                f"--timeout={max(1, int(timeout))}",
                *([f"--log-file={_cli_log_file}"] if _cli_log_file else []),
                *tls.cli_args(),
                *args,
            ],
            # the CLI's own --timeout first; ours is the backstop
            timeout=timeout + min(timeout, 5.0),
        )
        if result.timed_out:
            failures.append(f"{host}: no answer within {timeout:g}s")
            continue
        if result.exit_code == 0:
            return result.stdout
        message = result.message()
        if any(marker in message for marker in _CONNECTION_FAILURES):
            failures.append(f"{host}: {message}")
            continue
        raise GlusterError(f"`{what}` on {host} failed: {message}")
    raise GlusterError(f"no gluster host answered `{what}`: {'; '.join(failures)}")


def volume_clients(hosts: Sequence[str], volume: str, *, timeout: float) -> list[BrickClients]:
    """Every brick of `volume` with the client connections gluster lists for it."""
    text = run(hosts, ["volume", "status", volume, "clients"], timeout=timeout)
    return parse_volume_clients(text, volume)


def client_kinds(hosts: Sequence[str], volume: str, *, timeout: float) -> dict[str, int]:
    """How many client processes of each kind (`fuse`, `glustershd`, ...) `volume` has."""
    text = run(hosts, ["volume", "status", volume, "client-list"], timeout=timeout)
    return parse_client_list(text, volume)


def volume_info(hosts: Sequence[str], volume: str, *, timeout: float) -> VolumeInfo:
    """`gluster volume info VOL --xml` from `hosts`, parsed."""
    text = run(hosts, ["volume", "info", volume, "--xml"], timeout=timeout)
    return parse_volume_info(text, volume)


def volume_status(hosts: Sequence[str], volume: str, *, timeout: float) -> list[BrickState]:
    """`gluster volume status VOL --xml` from `hosts`, parsed: the bricks glusterd knows of."""
    text = run(hosts, ["volume", "status", volume, "--xml"], timeout=timeout)
    return parse_volume_status(text, volume)
