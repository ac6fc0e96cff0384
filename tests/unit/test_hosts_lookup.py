"""hosts_lookup.py: which servers a PV is wiped on, decided from admin-controlled data only."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from recycler_job.config import Config, load_config
from recycler_job.gluster.errors import VolumeIdentityError
from recycler_job.hosts_lookup import (
    HostsRefused,
    choose_hosts,
    endpoints_addresses,
    endpoints_place,
)
from recycler_job.sources.glusterfs import GlusterSource

POOL = ("192.0.2.10",)  # --gluster-hosts
ELSEWHERE = ("198.51.100.7",)  # another pool
TENANT_NS = "team-a"  # the former claim's namespace
ADMIN_NS = "glusterfs"


def config(*args: str) -> Config:
    return load_config(list(args), {}, namespace_file="/nonexistent")


def pv(claim_namespace: str | None = TENANT_NS) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if claim_namespace is not None:
        spec["claimRef"] = {"namespace": claim_namespace, "name": "data", "uid": "u1"}
    return {"metadata": {"name": "pv1"}, "spec": spec}


def source(namespace: str | None = None, endpoints: str = "glusterfs-cluster") -> GlusterSource:
    return GlusterSource(
        endpoints=endpoints, path="vol", endpoints_namespace=namespace, read_only=False
    )


class Reader:
    """Endpoints by (namespace, name); records what was read."""

    def __init__(self, found: dict[tuple[str, str], tuple[str, ...]]) -> None:
        self.found = found
        self.reads: list[tuple[str, str]] = []

    def __call__(self, namespace: str, name: str) -> tuple[str, ...] | None:
        self.reads.append((namespace, name))
        return self.found.get((namespace, name))


def at(namespace: str, hosts: tuple[str, ...], name: str = "glusterfs-cluster") -> Reader:
    return Reader({(namespace, name): hosts})


# ---- where the Endpoints are, and who controls them ----------------------------------------


@pytest.mark.parametrize(
    ("src", "args", "namespace", "tenant"),
    [
        (source(ADMIN_NS), (), ADMIN_NS, False),
        (source(TENANT_NS), (), TENANT_NS, True),  # what the dynamic provisioner writes
        (source(), ("--endpoints-namespace", ADMIN_NS), ADMIN_NS, False),
        (source(), ("--endpoints-namespace", TENANT_NS), TENANT_NS, True),
        (source(TENANT_NS), ("--endpoints-namespace", ADMIN_NS), TENANT_NS, True),
        (source(), (), None, False),
        (source(), ("--endpoints-from-claim-namespace",), TENANT_NS, False),
        (source(TENANT_NS), ("--endpoints-from-claim-namespace",), TENANT_NS, False),
        # provisioned for a claim in team-b, recycled, then bound from team-a
        (source("team-b", "glusterfs-dynamic-1f2e"), (), "team-b", True),
        (
            source("team-b", "glusterfs-dynamic-1f2e"),
            ("--endpoints-from-claim-namespace",),
            "team-b",
            False,
        ),
    ],
)
def test_endpoints_in_a_tenant_namespace_are_the_tenant_s(
    src: GlusterSource, args: tuple[str, ...], namespace: str | None, tenant: bool
) -> None:
    place = endpoints_place(pv(), src, config(*args))
    assert place.namespace == namespace
    assert (place.tenant is not None) is tenant


def test_without_a_claim_ref_no_namespace_is_the_tenant_s() -> None:
    place = endpoints_place(pv(None), source(TENANT_NS), config())
    assert (place.namespace, place.tenant) == (TENANT_NS, None)
    assert (
        endpoints_place(pv(None), source(), config("--endpoints-from-claim-namespace")).namespace
        is None
    )


# ---- without --gluster-hosts: the Endpoints choose the servers, if an admin controls them ----


def test_admin_endpoints_give_the_hosts() -> None:
    read = at(ADMIN_NS, ("192.0.2.1", "192.0.2.2"))
    assert choose_hosts(pv(), source(ADMIN_NS), config(), read) == ("192.0.2.1", "192.0.2.2")


@pytest.mark.parametrize("args", [(), ("--endpoints-namespace", TENANT_NS)])
def test_tenant_endpoints_never_choose_the_servers(args: tuple[str, ...]) -> None:
    src = source(None if args else TENANT_NS)
    read = at(TENANT_NS, ELSEWHERE)
    with pytest.raises(HostsRefused, match="former claim's namespace team-a") as caught:
        choose_hosts(pv(), src, config(*args), read)
    assert "--gluster-hosts" in str(caught.value)
    assert read.reads == [], "nothing a tenant wrote is even read"


def test_the_opt_in_trusts_the_claim_namespace() -> None:
    read = at(TENANT_NS, ELSEWHERE)
    chosen = choose_hosts(pv(), source(TENANT_NS), config("--endpoints-from-claim-namespace"), read)
    assert chosen == ELSEWHERE


@pytest.mark.parametrize(
    ("src", "found", "match"),
    [
        (source(), {}, "no namespace for Endpoints"),
        (source(ADMIN_NS), {}, f"Endpoints {ADMIN_NS}/glusterfs-cluster not found"),
        (source(ADMIN_NS), {(ADMIN_NS, "glusterfs-cluster"): ()}, "lists no address"),
    ],
)
def test_no_admin_endpoints_without_gluster_hosts_is_refused(
    src: GlusterSource, found: dict[tuple[str, str], tuple[str, ...]], match: str
) -> None:
    with pytest.raises(HostsRefused, match=match):
        choose_hosts(pv(), src, config(), Reader(found))


# ---- with --gluster-hosts: admin Endpoints prove the pool, tenant ones can only refuse -------


def pooled(*args: str) -> Config:
    return dataclasses.replace(config(*args), gluster_hosts=POOL)


def test_admin_endpoints_that_agree_prove_the_pool() -> None:
    assert choose_hosts(pv(), source(ADMIN_NS), pooled(), at(ADMIN_NS, POOL)) == POOL


@pytest.mark.parametrize("namespace", [ADMIN_NS, TENANT_NS])
@pytest.mark.parametrize("only_pool", [False, True])
def test_endpoints_of_another_pool_refuse_whoever_controls_them(
    namespace: str, only_pool: bool
) -> None:
    settings = dataclasses.replace(pooled(), gluster_hosts_only_pool=only_pool)
    with pytest.raises(VolumeIdentityError, match="another gluster pool"):
        choose_hosts(pv(), source(namespace), settings, at(namespace, ELSEWHERE))


def test_tenant_endpoints_that_agree_prove_nothing() -> None:
    with pytest.raises(HostsRefused, match="prove nothing") as caught:
        choose_hosts(pv(), source(TENANT_NS), pooled(), at(TENANT_NS, POOL))
    assert "--gluster-hosts-only-pool" in str(caught.value)


@pytest.mark.parametrize(
    ("src", "found"),
    [
        (source(), {}),  # no namespace to look in
        (source(ADMIN_NS), {}),  # admin Endpoints missing
        (source(ADMIN_NS), {(ADMIN_NS, "glusterfs-cluster"): ()}),  # no address
        (source(TENANT_NS), {}),  # tenant Endpoints missing
        (source(TENANT_NS), {(TENANT_NS, "glusterfs-cluster"): POOL}),  # tenant's agree
    ],
)
def test_without_admin_endpoints_only_the_only_pool_assertion_wipes(
    src: GlusterSource, found: dict[tuple[str, str], tuple[str, ...]]
) -> None:
    with pytest.raises(HostsRefused, match="nothing admin-controlled shows"):
        choose_hosts(pv(), src, pooled(), Reader(found))
    only = dataclasses.replace(pooled(), gluster_hosts_only_pool=True)
    assert choose_hosts(pv(), src, only, Reader(found)) == POOL


def test_endpoints_addresses_ip_else_hostname_in_order() -> None:
    obj = {
        "subsets": [
            {"addresses": [{"ip": "192.0.2.2"}, {"hostname": "gl-3"}]},
            {"addresses": [{"ip": "192.0.2.2"}, {"ip": "192.0.2.1"}]},
            {"notReadyAddresses": [{"ip": "192.0.2.9"}]},
        ]
    }
    assert endpoints_addresses(obj) == ("192.0.2.2", "gl-3", "192.0.2.1")
    assert endpoints_addresses({}) == ()
