"""The one DNS-1123 check and the one host check that config, selector and mounts share."""

import pytest

from recycler_job.config import ConfigError, load_config
from recycler_job.gluster.errors import GlusterError
from recycler_job.gluster.hosts import check_hosts
from recycler_job.names import check_host, is_dns1123_label, is_dns1123_subdomain
from recycler_job.selector import validate_key


@pytest.mark.parametrize(
    ("name", "label", "subdomain"),
    [
        ("a", True, True),
        ("gluster-recycler", True, True),
        ("0abc9", True, True),
        ("a.b-c.d", False, True),
        ("x" * 63, True, True),
        ("x" * 64, False, True),
        (".".join(["x" * 63] * 4)[:253], False, True),
        ("x" * 254, False, False),
        ("", False, False),
        ("A", False, False),
        ("-a", False, False),
        ("a-", False, False),
        ("a..b", False, False),
        ("a_b", False, False),
        ("a/b", False, False),
        ("a\n", False, False),
    ],
)
def test_dns1123(name: str, label: bool, subdomain: bool) -> None:
    assert is_dns1123_label(name) is label
    assert is_dns1123_subdomain(name) is subdomain


GOOD_HOSTS = [
    ("gluster-1.example.com", "gluster-1.example.com"),
    ("10.0.0.2", "10.0.0.2"),
    ("fe80::1", "fe80::1"),
    ("[fd00::3]", "fd00::3"),
    ("fe80::1%eth0", "fe80::1%eth0"),
    ("under_score", "under_score"),
    (" a ", "a"),
]
BAD_HOSTS = [
    "",
    "-oremount",
    "a,ro",
    "a b",
    "a/b",
    "a=b",
    "a:b",
    "host:24007",
    "a.",
    "$(id)",
    "x" * 254,
    "a\\nb",
]


@pytest.mark.parametrize(("host", "expected"), GOOD_HOSTS)
def test_check_host_accepts_names_and_addresses(host: str, expected: str) -> None:
    assert check_host(host) == expected


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_check_host_refuses_what_could_break_a_mount_option(host: str) -> None:
    with pytest.raises(ValueError):
        check_host(host)


@pytest.mark.parametrize(
    "host", [h for h, _ in GOOD_HOSTS] + [h for h in BAD_HOSTS if "," not in h]
)
def test_config_and_mounts_accept_the_same_hosts(host: str) -> None:
    """A host the configuration takes is one a mount takes: no surprise at the first volume."""
    try:
        check_hosts([host])
        mount_ok = True
    except GlusterError:
        mount_ok = False
    try:
        config_ok = bool(
            load_config(["--gluster-hosts", host], {}, namespace_file="/nonexistent").gluster_hosts
        )
    except ConfigError:
        config_ok = False
    assert config_ok is mount_ok


def test_selector_prefix_uses_the_same_subdomain_check() -> None:
    validate_key("example.com/tier")
    with pytest.raises(ValueError, match="DNS subdomain"):
        validate_key("Example.com/tier")
    with pytest.raises(ValueError, match="DNS subdomain"):
        validate_key("x" * 254 + "/tier")
