"""Which gluster servers a PV's volume is wiped on, decided from admin-controlled data only.

The PV (cluster-scoped, written by an admin or the provisioner) names its Endpoints. Endpoints
in a tenant's namespace are the tenant's: the former claim's namespace (however it is named:
the PV's `endpointsNamespace`, `--endpoints-namespace`, the opt-in fallback), and the
provisioner's `glusterfs-dynamic-*` Endpoints, which the in-tree provisioner only ever makes
in the namespace of the claim it provisions for. Unless the admin opts in
(`--endpoints-from-claim-namespace`), such Endpoints never choose the servers and never prove
that a PV is on the `--gluster-hosts` pool; they can only stop a wipe by disagreeing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recycler_job.api_errors import NotFound
from recycler_job.config import Config
from recycler_job.errors import RecyclerError
from recycler_job.gluster.hosts import ensure_same_pool
from recycler_job.kube import ENDPOINTS, Kube
from recycler_job.sources import GlusterSource

# The in-tree glusterfs provisioner names its Endpoints (and Service) so, in the claim's namespace.
DYNAMIC_ENDPOINTS_PREFIX = "glusterfs-dynamic-"

# (namespace, name) -> the Endpoints' addresses; None when they do not exist.
EndpointsReader = Callable[[str, str], "tuple[str, ...] | None"]


class HostsRefused(RecyclerError):
    """The PV's servers cannot be chosen from admin-controlled data; the message says why."""


@dataclass(frozen=True)
class EndpointsPlace:
    """Where a PV's Endpoints are read, and whether a tenant controls them there."""

    name: str
    namespace: str | None  # None: nowhere to look
    tenant: str | None  # why a tenant controls them (None: admin-controlled)

    @property
    def what(self) -> str:
        return f"Endpoints {self.namespace}/{self.name}"


def claim_namespace(pv: dict[str, Any]) -> str | None:
    """The namespace of the claim the PV was bound to; None without a claimRef."""
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    namespace = ref.get("namespace")
    return namespace if isinstance(namespace, str) and namespace else None


def endpoints_place(pv: dict[str, Any], source: GlusterSource, config: Config) -> EndpointsPlace:
    """The PV's `endpointsNamespace`, else --endpoints-namespace, else (opt-in only) the
    former claim's namespace; tenant-controlled as the module docstring says."""
    former = claim_namespace(pv)
    namespace = source.endpoints_namespace or config.endpoints_namespace
    if not namespace and config.endpoints_from_claim_namespace:
        namespace = former
    tenant: str | None = None
    if namespace and not config.endpoints_from_claim_namespace:
        if namespace == former:
            tenant = f"are in the former claim's namespace {namespace}"
        elif source.endpoints.startswith(DYNAMIC_ENDPOINTS_PREFIX):
            tenant = (
                f"are the dynamic provisioner's ({DYNAMIC_ENDPOINTS_PREFIX}*), made in the "
                f"namespace of the claim it provisioned for ({namespace})"
            )
    return EndpointsPlace(source.endpoints, namespace or None, tenant)


def choose_hosts(
    pv: dict[str, Any], source: GlusterSource, config: Config, read: EndpointsReader
) -> tuple[str, ...]:
    """The servers to wipe the PV's volume on; HostsRefused (or VolumeIdentityError, another
    pool) when admin-controlled data cannot tell.

    Without --gluster-hosts: the hosts of admin-controlled Endpoints. With it: admin-controlled
    Endpoints must share an address with it; Endpoints a tenant controls only refuse (on a
    disagreement); a PV without admin-controlled Endpoints to compare is refused unless
    --gluster-hosts-only-pool asserts that it is the only pool.
    """
    place = endpoints_place(pv, source, config)
    configured = config.gluster_hosts
    if not configured and place.tenant is not None:
        raise HostsRefused(
            f"{place.what} {place.tenant}: its users could point the wipe at any gluster "
            "server, so they do not choose the servers; set --gluster-hosts (the servers "
            "to use), or --endpoints-from-claim-namespace to trust them"
        )
    if place.namespace is None:
        addresses = None
        missing = (
            f"no namespace for Endpoints {source.endpoints!r}: the PV sets no "
            "endpointsNamespace and --endpoints-namespace is not set (the former claim's "
            "namespace is read only with --endpoints-from-claim-namespace)"
        )
    else:
        addresses = read(place.namespace, place.name)
        missing = place.what + (" not found" if addresses is None else " lists no address")
    if not configured:
        if not addresses:
            raise HostsRefused(f"{missing}; set --gluster-hosts or create the Endpoints")
        return addresses
    if addresses:
        # Whoever controls them: Endpoints naming another pool stop the wipe.
        ensure_same_pool(configured, addresses, what=place.what)
        if place.tenant is None:
            return configured
    if config.gluster_hosts_only_pool:
        return configured
    if place.tenant is not None:
        missing = f"{place.what} {place.tenant}: they prove nothing about the pool"
    raise HostsRefused(
        f"{missing}; nothing admin-controlled shows that the volume is on the "
        "--gluster-hosts pool (another pool may have a volume of that name); set "
        "--gluster-hosts-only-pool if it is the only gluster pool of these PVs"
    )


def endpoints_addresses(endpoints: dict[str, Any]) -> tuple[str, ...]:
    """Every distinct address (ip, else hostname) of an Endpoints object, in order."""
    hosts: list[str] = []
    for subset in endpoints.get("subsets") or []:
        for address in subset.get("addresses") or []:
            host = address.get("ip") or address.get("hostname")
            if host and host not in hosts:
                hosts.append(host)
    return tuple(hosts)


def gluster_hosts(
    kube: Kube, pv: dict[str, Any], source: GlusterSource, config: Config
) -> tuple[str, ...]:
    """`choose_hosts` with the Endpoints read from the API (one GET, when there is a place)."""

    def read(namespace: str, name: str) -> tuple[str, ...] | None:
        try:
            return endpoints_addresses(kube.get(ENDPOINTS, name, namespace))
        except NotFound:
            return None

    return choose_hosts(pv, source, config, read)
