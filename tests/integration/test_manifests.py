"""The deployment manifests against the real API server and controllers of the sandbox.

Schema and semantics are checked by the pinned kube-apiserver itself (server-side dry run with
strict field validation, or kubectl's schema validation before 1.24), with the kubectl (and so
the kustomize) of the same version; the CronJob and Job controllers really create Jobs and
pods, and a full pass runs with the installed ServiceAccount's own token against a real
gluster volume. The whole file is in the compatibility subset (tests/conftest.py): it runs on
every Kubernetes version of testenv/.

The OpenShift Template is generated from the OpenShift overlay; after changing manifests/:

    .venv/bin/python -m tests.integration.test_manifests --write-template
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from recycler_job.config import build_parser, load_config
from recycler_job.exit_codes import ExitCode
from tests.integration import scenario
from tests.integration.scenario import RECYCLER
from tests.sandbox.controlplane import ControlPlane, control_plane_bin_dir
from tests.sandbox.kustomize import RELEASED, downstream
from tests.sandbox.objects import endpoints, gluster_pv, pvc, wait_for

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
OPENSHIFT = REPO / "overlays" / "openshift"
NEWER = REPO / "overlays" / "kubernetes-1.26"
DRY_RUN = REPO / "overlays" / "dry-run"
OPENSHIFT_48 = REPO / "overlays" / "openshift-4.8-restricted"
OPENSHIFT_BUILD = REPO / "overlays" / "openshift-build"
MONITORING = MANIFESTS / "components" / "monitoring"
TEMPLATE = OPENSHIFT / "template.yaml"
# The one version source; the label, the image tag and the template follow it.
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
RECOMMENDED_LABELS = {
    "app.kubernetes.io/name": "gluster-recycler",
    "app.kubernetes.io/instance": "gluster-recycler",
    "app.kubernetes.io/version": VERSION,
    "app.kubernetes.io/component": "volume-recycler",
    "app.kubernetes.io/part-of": "gluster-recycler",
    "app.kubernetes.io/managed-by": "kustomize",
}
NS = "gluster-recycler"
SA = f"system:serviceaccount:{NS}:gluster-recycler"
IMAGE = f"{RELEASED}:{VERSION}"
KINDS = {
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "CronJob",
}
TEMPLATE_DEFAULTS = {
    "NAMESPACE": NS,
    "GLUSTER_HOSTS": "",
    "SCHEDULE": "*/5 * * * *",
    "DEBUG": "false",
    "IMAGE": IMAGE,
    "NODE_SELECTOR_JSON": "{}",
}

# ---- helpers ------------------------------------------------------------------------------


def render(plane: ControlPlane, path: Path) -> list[dict[str, Any]]:
    out = plane.run_kubectl("kustomize", str(path)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def needs(plane: ControlPlane, minor: int, what: str) -> None:
    if not plane.at_least(minor):
        pytest.skip(f"{what} needs Kubernetes 1.{minor}+; this is {plane.server_version}")


def unexpected_warnings(stderr: str) -> list[str]:
    """Warnings other than the API's about spec.glusterfs and newer kustomize versions'
    about the fields kept for the kustomize of kubectl 1.21 (commonLabels, bases, and the
    patch fields of the overlays: patchesStrategicMerge, patchesJson6902)."""
    return [
        line
        for line in stderr.splitlines()
        if line.strip()
        and "glusterfs" not in line
        and not re.search(
            r"'(commonLabels|bases|patchesStrategicMerge|patchesJson6902)' is deprecated", line
        )
    ]


def by_kind(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = by_kind(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"][
        "spec"
    ]
    return spec


def process_template(params: dict[str, str]) -> list[dict[str, Any]]:
    """What `oc process` does with our template: ${P} in strings, every parameter declared."""
    template = yaml.safe_load(TEMPLATE.read_text())
    declared = {p["name"]: p.get("value", "") for p in template["parameters"]}
    values = {**declared, **params}
    text = json.dumps(template["objects"])
    used = set(re.findall(r"\$\{\{?([A-Z_]+)\}", text))
    assert used <= set(declared), f"undeclared parameters {used - set(declared)}"
    assert set(declared) <= used, f"parameters never used: {set(declared) - used}"

    def sub(value: Any) -> Any:
        if isinstance(value, str) and (whole := re.fullmatch(r"\$\{\{([A-Z_]+)\}\}", value)):
            return json.loads(values[whole.group(1)])  # ${{P}}: the value as JSON, not a string
        if isinstance(value, str):
            return re.sub(r"\$\{([A-Z_]+)\}", lambda m: values[m.group(1)], value)
        if isinstance(value, list):
            return [sub(v) for v in value]
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        return value

    objects: list[dict[str, Any]] = sub(template["objects"])
    return objects


def template_from_overlay(docs: list[dict[str, Any]]) -> str:
    """The template text for the rendered overlay (see --write-template)."""
    objects = []
    for original in docs:
        doc = copy.deepcopy(original)
        meta = doc["metadata"]
        if doc["kind"] == "Namespace":
            meta["name"] = "${NAMESPACE}"
        if meta.get("namespace") == NS:
            meta["namespace"] = "${NAMESPACE}"
        for subject in doc.get("subjects", []):
            if subject.get("namespace") == NS:
                subject["namespace"] = "${NAMESPACE}"
        if doc["kind"] == "CronJob":
            doc["spec"]["schedule"] = "${SCHEDULE}"
            pod_spec([doc])["containers"][0]["image"] = "${IMAGE}"
            pod_spec([doc])["nodeSelector"] = "${{NODE_SELECTOR_JSON}}"
        if doc["kind"] == "ConfigMap":
            doc["data"]["GLUSTER_HOSTS"] = "${GLUSTER_HOSTS}"
            doc["data"]["DEBUG"] = "${DEBUG}"
        objects.append(doc)
    current = yaml.safe_load(TEMPLATE.read_text())
    current["objects"] = objects
    header = "".join(
        line for line in TEMPLATE.read_text().splitlines(keepends=True) if line.startswith("#")
    )
    return header + yaml.safe_dump(current, sort_keys=False, width=100)


# (verb, resource, namespace) as `kubectl auth can-i` takes them: `resource[.group][/name]`,
# except these, which are subresources.
SUBRESOURCES = {"pods/exec", "pods/log", "serviceaccounts/token"}


def attributes(verb: str, resource: str, namespace: str | None) -> dict[str, str]:
    """The SubjectAccessReview resourceAttributes of one can-i question."""
    kind, _, rest = resource.partition("/")
    plural, _, group = kind.partition(".")
    attrs = {"verb": verb, "group": group, "resource": plural}
    if rest:
        attrs["subresource" if resource in SUBRESOURCES else "name"] = rest
    return attrs | ({"namespace": namespace} if namespace else {})


def allowed(plane: ControlPlane, questions: list[dict[str, str]]) -> list[bool]:
    """RBAC's answers for the pass's ServiceAccount: one SubjectAccessReview per question, all
    created by one kubectl. The user and groups are what `kubectl auth can-i --as=<SA>` gets
    from impersonation; a SubjectAccessReview also asks about groups the server does not
    serve (OpenShift's SCCs), which `can-i` drops."""
    reviews = [
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": SA,
                "groups": [
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{NS}",
                    "system:authenticated",
                ],
                "resourceAttributes": question,
            },
        }
        for question in questions
    ]
    doc = {"apiVersion": "v1", "kind": "List", "items": reviews}
    out = plane.run_kubectl("create", "-f", "-", "-o", "json", input_text=json.dumps(doc))
    items, decoder, at = [], json.JSONDecoder(), 0  # one JSON document per review
    while out.stdout[at:].strip():
        item, at = decoder.raw_decode(out.stdout, len(out.stdout) - len(out.stdout[at:].lstrip()))
        items.append(item)
    asked = [{k: v for k, v in question.items() if v} for question in questions]  # omitempty
    assert [i["spec"]["resourceAttributes"] for i in items] == asked, out.stdout
    return [bool(i["status"].get("allowed")) for i in items]


def can_i(plane: ControlPlane, questions: list[tuple[str, str, str | None]]) -> list[bool]:
    return allowed(plane, [attributes(*question) for question in questions])


def may_use_scc(plane: ControlPlane, scc: str, namespace: str = NS) -> bool:
    """What OpenShift's SCC admission asks RBAC for the pod's ServiceAccount."""
    question = {
        "group": "security.openshift.io",
        "resource": "securitycontextconstraints",
        "name": scc,
        "verb": "use",
        "namespace": namespace,
    }
    return allowed(plane, [question])[0]


def phase(plane: ControlPlane, name: str) -> str:
    return str(plane.get_json("pv", name).get("status", {}).get("phase", ""))


def token_of(kubeconfig: Path) -> str:
    config = yaml.safe_load(kubeconfig.read_text())
    token: str = config["users"][0]["user"]["token"]
    return token


def run_pass(
    kubeconfig: Path, *args: str, settings: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """One pass with a clean environment (no settings leak in from ours), plus `settings` as
    environment variables (as envFrom gives a pod the ConfigMap's)."""
    argv = [*RECYCLER, "--kubeconfig", str(kubeconfig), "--lease-namespace", NS, *args]
    return scenario.run_pass(argv, env=settings, clean_env=True)


# ---- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(control_plane: ControlPlane) -> ControlPlane:
    """`kubectl apply -k manifests/`, for real."""
    control_plane.run_kubectl("apply", "-k", str(MANIFESTS))
    return control_plane


# ---- rendering and schema -----------------------------------------------------------------


def test_kustomize_renders_everything_into_one_namespace(control_plane: ControlPlane) -> None:
    docs = render(control_plane, MANIFESTS)
    assert {d["kind"] for d in docs} == KINDS
    assert len(docs) == len(KINDS)
    for doc in docs:
        if doc["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert "namespace" not in doc["metadata"], doc["metadata"]
        else:
            assert doc["metadata"]["namespace"] == NS, doc["metadata"]
        for subject in doc.get("subjects", []):
            assert subject == {
                "kind": "ServiceAccount",
                "name": "gluster-recycler",
                "namespace": NS,
            }
    assert by_kind(docs, "Namespace")["metadata"]["name"] == NS
    # The released image by default; no images: rewrite in the base (a downstream
    # kustomization's images: entry for it must still match).
    assert pod_spec(docs)["containers"][0]["image"] == IMAGE
    base = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert "images" not in base


def test_recommended_labels_are_set_once_and_reach_jobs_and_pods(
    control_plane: ControlPlane,
) -> None:
    for target in (MANIFESTS, OPENSHIFT, OPENSHIFT_BUILD):
        for doc in render(control_plane, target):
            labels = doc["metadata"].get("labels", {})
            assert RECOMMENDED_LABELS.items() <= labels.items(), (doc["kind"], labels)
            if doc["kind"] == "CronJob":
                job = doc["spec"]["jobTemplate"]
                pod = job["spec"]["template"]
                assert RECOMMENDED_LABELS.items() <= job["metadata"]["labels"].items()
                assert RECOMMENDED_LABELS.items() <= pod["metadata"]["labels"].items()
    # The version label follows the image tag; the object files carry no copies.
    base = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert base["commonLabels"] == RECOMMENDED_LABELS
    assert RECOMMENDED_LABELS["app.kubernetes.io/version"] == VERSION
    assert (
        yaml.safe_load((MANIFESTS / "cronjob.yaml").read_text())["spec"]["jobTemplate"]["spec"][
            "template"
        ]["spec"]["containers"][0]["image"]
        == IMAGE
    )
    for overlay_dir in (OPENSHIFT, OPENSHIFT_BUILD):
        overlay = yaml.safe_load((overlay_dir / "kustomization.yaml").read_text())
        assert overlay["commonLabels"] == base["commonLabels"], overlay_dir
    overlay_files = [
        p for d in (OPENSHIFT, NEWER, OPENSHIFT_BUILD, DRY_RUN) for p in d.glob("*.yaml")
    ]
    for path in [*MANIFESTS.glob("*.yaml"), *overlay_files]:
        if path.name not in ("kustomization.yaml", "template.yaml"):
            assert "app.kubernetes.io/" not in path.read_text(), path


def test_base_has_only_fields_every_supported_version_knows(control_plane: ControlPlane) -> None:
    """1.21-1.23 reject timeZone, 1.21-1.25 lack or switch off podFailurePolicy, 1.21-1.27
    reject podReplacementPolicy: those belong to overlays/kubernetes-1.26 (or nowhere)."""
    for target in (MANIFESTS, OPENSHIFT):
        cronjob = by_kind(render(control_plane, target), "CronJob")["spec"]
        job = cronjob["jobTemplate"]["spec"]
        assert "timeZone" not in cronjob
        assert "podFailurePolicy" not in job and "podReplacementPolicy" not in job
        # The next scheduled run is the retry: a busy volume makes one pod per run, not three.
        assert job["backoffLimit"] == 0


def test_newer_overlay_fails_fast_on_exit_1_and_2_and_retries_3(
    control_plane: ControlPlane,
) -> None:
    needs(control_plane, 26, "overlays/kubernetes-1.26 (kustomize of kubectl 1.26)")
    base = render(control_plane, MANIFESTS)
    docs = render(control_plane, NEWER)
    assert [d for d in docs if d["kind"] != "CronJob"] == [
        d for d in base if d["kind"] != "CronJob"
    ]
    cronjob = by_kind(docs, "CronJob")["spec"]
    job = cronjob["jobTemplate"]["spec"]
    assert cronjob["timeZone"] == "Etc/UTC"
    assert job["backoffLimit"] == 2
    assert "podReplacementPolicy" not in job  # unknown to 1.26/1.27; defaulted on 1.29+
    assert policy_rules(job) == {
        ("FailJob", (int(ExitCode.VOLUME_FAILED), int(ExitCode.BAD_CONFIG))),
        ("Ignore", (int(ExitCode.INTERRUPTED),)),
        ("Count", (int(ExitCode.CLUSTER_UNAVAILABLE),)),
    }
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]} in job[
        "podFailurePolicy"
    ]["rules"]


def test_openshift_overlay_renders_base_plus_scc_grant(control_plane: ControlPlane) -> None:
    base = render(control_plane, MANIFESTS)
    docs = render(control_plane, OPENSHIFT)
    extra = [d for d in docs if d not in base]
    assert all(d in docs for d in base)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in extra) == [
        ("ClusterRole", "gluster-recycler-scc-privileged"),
        ("RoleBinding", "gluster-recycler-scc-privileged"),
    ]
    role = by_kind(extra, "ClusterRole")
    assert role["rules"] == [
        {
            "apiGroups": ["security.openshift.io"],
            "resources": ["securitycontextconstraints"],
            "resourceNames": ["privileged"],
            "verbs": ["use"],
        }
    ]
    binding = by_kind(extra, "RoleBinding")
    assert binding["metadata"]["namespace"] == NS
    assert binding["roleRef"]["name"] == "gluster-recycler-scc-privileged"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "gluster-recycler", "namespace": NS}
    ]


def test_server_dry_run_with_strict_validation_accepts_every_manifest(
    control_plane: ControlPlane,
) -> None:
    # Namespaced objects need their namespace to exist, even in a dry run.
    control_plane.run_kubectl("apply", "-f", str(MANIFESTS / "namespace.yaml"))
    targets = [MANIFESTS, OPENSHIFT, DRY_RUN, OPENSHIFT_48]
    targets += [NEWER] if control_plane.at_least(26) else []
    for target in targets:
        docs = render(control_plane, target)
        result = control_plane.server_dry_run("-k", str(target))
        assert result.returncode == 0, result.stderr
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        assert len(lines) == len(docs), result.stdout
        assert all(line.endswith("(server dry run)") for line in lines), result.stdout
        warnings = unexpected_warnings(result.stderr)
        if target == OPENSHIFT_48:
            # Its namespace enforces `baseline`: the server warns about the privileged pods
            # that other tests' CronJob runs left in the live namespace (cluster state, not a
            # fault of these manifests). Only that warning, naming only our own pods, is fine.
            warnings = [
                w
                for w in warnings
                if not w.startswith(
                    'Warning: existing pods in namespace "gluster-recycler" violate the new '
                    "PodSecurity enforce level"
                )
                and not re.fullmatch(r"Warning: gluster-recycler-[a-z0-9-]+: privileged", w)
            ]
        assert not warnings, f"warnings: {result.stderr}"
    objects = process_template(TEMPLATE_DEFAULTS)
    result = control_plane.server_dry_run("-f", "-", input_text=yaml.safe_dump_all(objects))
    assert result.returncode == 0, result.stderr


def test_strict_validation_does_reject_a_bad_cronjob(control_plane: ControlPlane) -> None:
    """The check above can fail: the same call rejects what it is there to catch."""
    control_plane.run_kubectl("apply", "-f", str(MANIFESTS / "namespace.yaml"))
    cronjob = by_kind(render(control_plane, MANIFESTS), "CronJob")
    misspelt = copy.deepcopy(cronjob)
    misspelt["spec"]["jobTemplate"]["spec"]["template"]["spec"]["terminationGracePeriod"] = 180
    result = control_plane.server_dry_run("-f", "-", input_text=yaml.safe_dump(misspelt))
    assert result.returncode != 0 and "unknown field" in result.stderr, result.stderr
    if not control_plane.at_least(26):
        return
    exit_zero = by_kind(render(control_plane, NEWER), "CronJob")
    exit_zero["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"][
        "values"
    ] = [0]
    result = control_plane.server_dry_run("-f", "-", input_text=yaml.safe_dump(exit_zero))
    assert result.returncode != 0 and "podFailurePolicy" in result.stderr, result.stderr


def test_configmap_and_pod_env_are_a_valid_configuration(control_plane: ControlPlane) -> None:
    """What the pod's environment will hold passes the program's own validation."""
    docs = render(control_plane, MANIFESTS)
    container = pod_spec(docs)["containers"][0]
    configmap = by_kind(docs, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])
    env = {k: str(v) for k, v in configmap["data"].items()}
    for item in container["env"]:
        env[item["name"]] = item.get("value", NS)  # POD_NAMESPACE comes from metadata.namespace
    known = {"POD_NAMESPACE"} | {
        re.sub(r".*env ([A-Z_]+);.*", r"\1", a.help or "") for a in build_parser()._actions
    }
    assert set(env) <= known, f"variables the program does not read: {set(env) - known}"
    config = load_config([], env, namespace_file="/nonexistent")
    assert config.lease_namespace == NS
    assert config.mount_root == "/var/lib/gluster-recycler/mounts"
    assert config.mode == "release" and not config.dry_run and config.client_check
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert any(config.mount_root.startswith(m + "/") for m in mounts), "mount root on an emptyDir"


def test_deadlines_leave_time_to_finish_and_clean_up(control_plane: ControlPlane) -> None:
    docs = render(control_plane, MANIFESTS)
    job = by_kind(docs, "CronJob")["spec"]["jobTemplate"]["spec"]
    pod = pod_spec(docs)
    container = pod["containers"][0]
    env = {i["name"]: i["value"] for i in container["env"] if "value" in i}
    configmap = by_kind(docs, "ConfigMap")["data"]
    config = load_config([], {**configmap, **env}, namespace_file="/nonexistent")
    assert config.deadline is not None
    # The volume started last gets at least 10 minutes before the Job deadline's SIGTERM...
    assert config.deadline + 600 <= job["activeDeadlineSeconds"]
    # ...and after SIGTERM: umount then umount -l (MOUNT_TIMEOUT each), Event, lease release.
    assert pod["terminationGracePeriodSeconds"] >= 2 * config.mount_timeout + 2 * 30


# ---- installed for real -------------------------------------------------------------------


def test_apply_installs_everything_and_applying_again_changes_nothing(
    installed: ControlPlane,
) -> None:
    objects = (
        ("namespace", NS, False),
        ("serviceaccount", "gluster-recycler", True),
        ("clusterrole", "gluster-recycler:job", False),
        ("clusterrolebinding", "gluster-recycler:job", False),
        ("role", "gluster-recycler", True),
        ("rolebinding", "gluster-recycler", True),
        ("configmap", "gluster-recycler-config", True),
        ("cronjob", "gluster-recycler", True),
    )

    def versions() -> dict[str, str]:
        found = {}
        for kind, name, namespaced in objects:
            args = [kind, name] + (["-n", NS] if namespaced else [])
            obj = installed.get_json(*args)
            meta = obj["metadata"]
            assert meta["name"] == name
            if kind == "cronjob":
                # The CronJob controller writes status whenever the schedule fires (every 5
                # minutes, possibly between the two reads): compare what apply could change.
                # (Not metadata.generation: 1.21 does not set it on batch/v1 CronJobs.)
                ours = (obj["spec"], meta.get("labels"), meta.get("annotations"))
                found[f"{kind}/{name}"] = json.dumps(ours, sort_keys=True)
            else:
                found[f"{kind}/{name}"] = meta["resourceVersion"]
        return found

    before = versions()
    again = installed.run_kubectl("apply", "-k", str(MANIFESTS)).stdout.splitlines()
    assert len(again) == len(KINDS), again
    # kubectl may say "configured" where the server changes nothing: compare versions.
    assert versions() == before


def test_manual_job_from_the_cronjob_carries_the_configuration(
    installed: ControlPlane, unique: str
) -> None:
    name = f"manual-{unique}"
    installed.run_kubectl("create", "job", "--from=cronjob/gluster-recycler", "-n", NS, name)
    try:
        job = installed.get_json("job", name, "-n", NS)
        spec = job["spec"]
        assert spec["backoffLimit"] == 0
        assert "podFailurePolicy" not in spec
        assert spec["activeDeadlineSeconds"] == 3600
        assert RECOMMENDED_LABELS.items() <= spec["template"]["metadata"]["labels"].items()
        pod = spec["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        assert pod["serviceAccountName"] == "gluster-recycler"
        assert pod["shareProcessNamespace"] is True  # pause reaps the glusterfs daemons
        (container,) = pod["containers"]
        assert container["command"] == ["gluster-recycler"]
        assert container["image"] == IMAGE
        assert container["envFrom"] == [{"configMapRef": {"name": "gluster-recycler-config"}}]
        assert container["securityContext"]["privileged"] is True
        assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
        owners = job["metadata"]["ownerReferences"]
        assert [(o["kind"], o["name"]) for o in owners] == [("CronJob", "gluster-recycler")]

        # The Job controller makes a pod: admission (ServiceAccount, Pod Security) let it in.
        def pods() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = installed.get_json(
                "pods", "-n", NS, "-l", f"job-name={name}"
            )["items"]
            return items

        (created,) = wait_for(pods, timeout=60, what="the Job's pod")
        assert created["spec"]["serviceAccountName"] == "gluster-recycler"
        assert created["spec"]["containers"][0]["securityContext"]["privileged"] is True
        mounts = {m["mountPath"] for m in created["spec"]["containers"][0]["volumeMounts"]}
        assert "/var/run/secrets/kubernetes.io/serviceaccount" in mounts
    finally:
        installed.run_kubectl(
            "delete",
            "job",
            name,
            "-n",
            NS,
            "--cascade=foreground",
            "--wait=true",
            check=False,
        )


def policy_rules(job: dict[str, Any]) -> set[tuple[str, tuple[int, ...]]]:
    """(action, exit codes) of a Job spec's podFailurePolicy rules on exit codes."""
    return {
        (r["action"], tuple(r["onExitCodes"]["values"]))
        for r in job["podFailurePolicy"]["rules"]
        if "onExitCodes" in r
    }


def job_pods(plane: ControlPlane, job: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = plane.get_json("pods", "-n", NS, "-l", f"job-name={job}")["items"]
    return items


def end_pod(plane: ControlPlane, pod: dict[str, Any], exit_code: int) -> None:
    """What the kubelet reports when the program exits with `exit_code` (the sandbox has no
    kubelet): the pod Failed, its container terminated with that code."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    container = pod["spec"]["containers"][0]
    status = {
        "phase": "Failed",
        "startTime": now,
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": exit_code,
                        "reason": "Error",
                        "startedAt": now,
                        "finishedAt": now,
                    }
                },
            }
        ],
    }
    meta = pod["metadata"]
    plane.request(
        "PATCH",
        f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
        {"status": status},
        content_type="application/merge-patch+json",
    )


def job_failed(plane: ControlPlane, job: str) -> str | None:
    """The reason of the Job's Failed condition, None while it has none."""
    status = plane.get_json("job", job, "-n", NS).get("status", {})
    for condition in status.get("conditions", []):
        if condition["type"] == "Failed" and condition["status"] == "True":
            return str(condition.get("reason", ""))
    return None


def run_job_to_exit(plane: ControlPlane, name: str, exit_code: int) -> None:
    """A Job from the installed CronJob whose first pod ends with `exit_code`."""
    plane.run_kubectl("create", "job", "--from=cronjob/gluster-recycler", "-n", NS, name)
    (pod,) = wait_for(lambda: job_pods(plane, name), timeout=60, what="the Job's pod")
    end_pod(plane, pod, exit_code)


def delete_job(plane: ControlPlane, name: str) -> None:
    plane.run_kubectl("delete", "job", name, "-n", NS, "--wait=false", check=False)


@pytest.mark.parametrize("code", [ExitCode.VOLUME_FAILED, ExitCode.CLUSTER_UNAVAILABLE])
def test_base_job_is_not_retried_within_the_job(
    installed: ControlPlane, unique: str, code: ExitCode
) -> None:
    """Without podFailurePolicy, backoffLimit 0: one pod per scheduled run, whatever the code
    (a busy volume does not start three pods every five minutes)."""
    name = f"once-{int(code)}-{unique}"
    try:
        run_job_to_exit(installed, name, int(code))
        reason = wait_for(lambda: job_failed(installed, name), timeout=60, what="Job Failed")
        assert reason == "BackoffLimitExceeded"
        # A Job with its Failed condition set is finished: the controller starts no pod
        # after it, so the count it reports is final.
        status = installed.get_json("job", name, "-n", NS)["status"]
        assert status.get("failed") == 1 and not status.get("active")
        assert len(job_pods(installed, name)) == 1
    finally:
        delete_job(installed, name)


def test_newer_overlay_job_fails_at_once_on_exit_1_and_retries_exit_3(
    installed: ControlPlane, unique: str
) -> None:
    """The real Job controller of 1.26+ applies the overlay's podFailurePolicy."""
    needs(installed, 26, "podFailurePolicy (beta, on by default)")
    installed.run_kubectl("apply", "-k", str(NEWER))
    busy, unreachable = f"busy-{unique}", f"api-{unique}"
    try:
        run_job_to_exit(installed, busy, int(ExitCode.VOLUME_FAILED))
        reason = wait_for(lambda: job_failed(installed, busy), timeout=60, what="Job Failed")
        assert reason == "PodFailurePolicy"
        assert len(job_pods(installed, busy)) == 1
        job = installed.get_json("job", busy, "-n", NS)["spec"]
        if installed.at_least(29):  # defaulted because a podFailurePolicy is set
            assert job["podReplacementPolicy"] == "Failed"

        run_job_to_exit(installed, unreachable, int(ExitCode.CLUSTER_UNAVAILABLE))

        def retried() -> list[dict[str, Any]] | None:
            pods = job_pods(installed, unreachable)
            return pods if len(pods) >= 2 else None

        assert len(wait_for(retried, timeout=90, what="a retry pod")) == 2
        assert job_failed(installed, unreachable) is None
    finally:
        delete_job(installed, busy)
        delete_job(installed, unreachable)
        installed.run_kubectl("apply", "-k", str(MANIFESTS))
    cronjob = installed.get_json("cronjob", "gluster-recycler", "-n", NS)["spec"]
    # kubectl apply removes what the overlay added, as it was last applied from there.
    assert "podFailurePolicy" not in cronjob["jobTemplate"]["spec"]


def test_cronjob_controller_starts_a_job_on_schedule(installed: ControlPlane) -> None:
    installed.run_kubectl(
        "delete", "jobs", "--all", "-n", NS, "--cascade=foreground", "--wait=true"
    )
    installed.run_kubectl(
        "patch",
        "cronjob",
        "gluster-recycler",
        "-n",
        NS,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"schedule": "* * * * *"}}),
    )
    try:

        def scheduled() -> list[str]:
            jobs = installed.get_json("jobs", "-n", NS)["items"]
            return [
                j["metadata"]["name"]
                for j in jobs
                if any(
                    o["kind"] == "CronJob" and o["name"] == "gluster-recycler"
                    for o in j["metadata"].get("ownerReferences", [])
                )
                and "cronjob.kubernetes.io/instantiate" not in j["metadata"].get("annotations", {})
            ]

        names = wait_for(scheduled, timeout=80, interval=2, what="a Job from the schedule")
        assert all(n.startswith("gluster-recycler-") for n in names)
        cronjob = installed.get_json("cronjob", "gluster-recycler", "-n", NS)
        assert cronjob["status"].get("lastScheduleTime")
    finally:
        installed.run_kubectl("apply", "-k", str(MANIFESTS))  # back to */5
        installed.run_kubectl("delete", "jobs", "--all", "-n", NS, "--wait=false", check=False)
    assert (
        installed.get_json("cronjob", "gluster-recycler", "-n", NS)["spec"]["schedule"]
        == "*/5 * * * *"
    )


# ---- RBAC ---------------------------------------------------------------------------------

EXPECTED_CLUSTER_RULES = [
    {
        "apiGroups": [""],
        "resources": ["persistentvolumes"],
        "verbs": ["get", "list", "watch", "patch", "create", "delete"],
    },
    {
        "apiGroups": [""],
        "resources": ["persistentvolumeclaims"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": [""], "resources": ["endpoints"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "create", "patch"]},
]
EXPECTED_NAMESPACE_RULES = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": ["gluster-recycler"],
        "verbs": ["get", "list", "watch", "update"],
    },
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["gluster-recycler-recreate"],
        "verbs": ["get", "update"],
    },
]


def test_rbac_rules_are_exactly_these_and_have_no_wildcard(control_plane: ControlPlane) -> None:
    docs = render(control_plane, OPENSHIFT)
    assert by_kind(docs, "ClusterRole", "gluster-recycler:job")["rules"] == EXPECTED_CLUSTER_RULES
    assert by_kind(docs, "Role", "gluster-recycler")["rules"] == EXPECTED_NAMESPACE_RULES
    for doc in docs:
        for rule in doc.get("rules", []):
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), (doc["metadata"]["name"], rule)


def test_service_account_may_do_what_a_pass_needs(installed: ControlPlane) -> None:
    needed = [
        *(
            (verb, "persistentvolumes", None)
            for verb in ("get", "list", "watch", "patch", "create", "delete")
        ),
        ("list", "persistentvolumeclaims", None),
        ("watch", "persistentvolumeclaims", None),
        ("get", "persistentvolumeclaims", "some-app"),
        ("get", "endpoints", "some-app"),
        ("create", "events", "default"),
        ("get", "events", "default"),
        ("patch", "events", "default"),
        ("create", "leases.coordination.k8s.io", NS),
        ("get", "leases.coordination.k8s.io/gluster-recycler", NS),
        ("list", "leases.coordination.k8s.io/gluster-recycler", NS),
        ("watch", "leases.coordination.k8s.io/gluster-recycler", NS),
        ("update", "leases.coordination.k8s.io/gluster-recycler", NS),
        ("create", "configmaps", NS),
        ("get", "configmaps/gluster-recycler-recreate", NS),
        ("update", "configmaps/gluster-recycler-recreate", NS),
    ]
    answers = can_i(installed, needed)
    denied_for = [question for question, yes in zip(needed, answers, strict=True) if not yes]
    assert not denied_for, f"the ServiceAccount lacks {denied_for}"


def test_service_account_is_denied_everything_else(installed: ControlPlane) -> None:
    denied = [
        ("get", "secrets", NS),
        ("list", "secrets", NS),
        ("list", "events", "default"),
        ("delete", "events", "default"),
        ("list", "secrets", "default"),
        ("get", "secrets", "kube-system"),
        ("delete", "persistentvolumeclaims", "some-app"),
        ("create", "persistentvolumeclaims", "some-app"),
        ("patch", "persistentvolumeclaims", "some-app"),
        ("update", "persistentvolumes", None),
        ("deletecollection", "persistentvolumes", None),
        ("list", "leases.coordination.k8s.io", NS),
        ("watch", "leases.coordination.k8s.io", NS),
        ("get", "nodes", None),
        ("list", "nodes", None),
        ("create", "pods", NS),
        ("list", "pods", NS),
        ("create", "pods/exec", NS),
        ("create", "pods/exec", "some-app"),
        ("get", "pods/log", NS),
        ("delete", "leases.coordination.k8s.io/gluster-recycler", NS),
        ("update", "leases.coordination.k8s.io/some-other-lease", NS),
        ("get", "leases.coordination.k8s.io/gluster-recycler", "kube-system"),
        ("update", "leases.coordination.k8s.io/kube-controller-manager", "kube-system"),
        ("get", "configmaps/gluster-recycler-config", NS),
        ("update", "configmaps/gluster-recycler-config", NS),
        ("delete", "configmaps/gluster-recycler-recreate", NS),
        ("create", "configmaps", "default"),
        ("update", "endpoints", "some-app"),
        ("list", "endpoints", "some-app"),
        ("create", "serviceaccounts/token", NS),
        ("create", "clusterrolebindings", None),
        ("escalate", "clusterroles", None),
        ("bind", "clusterroles", None),
        ("update", "cronjobs.batch", NS),
        ("create", "jobs.batch", NS),
        ("*", "*", None),
    ]
    answers = can_i(installed, denied)
    allowed_for = [question for question, yes in zip(denied, answers, strict=True) if yes]
    assert not allowed_for, f"the ServiceAccount may also {allowed_for}"
    assert not may_use_scc(installed, "privileged"), "the base grants an OpenShift SCC"


def test_openshift_overlay_applies_and_grants_use_of_privileged_scc(
    installed: ControlPlane,
) -> None:
    assert not may_use_scc(installed, "privileged")
    result = installed.server_dry_run("-k", str(OPENSHIFT))
    assert result.returncode == 0, result.stderr
    try:
        installed.run_kubectl("apply", "-k", str(OPENSHIFT))
        assert may_use_scc(installed, "privileged")
        assert not may_use_scc(installed, "anyuid")
        assert not may_use_scc(installed, "privileged", namespace="default")
    finally:
        installed.run_kubectl(
            "delete",
            "rolebinding",
            "gluster-recycler-scc-privileged",
            "-n",
            NS,
            check=False,
        )
        installed.run_kubectl(
            "delete", "clusterrole", "gluster-recycler-scc-privileged", check=False
        )
    assert not may_use_scc(installed, "privileged")


def test_openshift_template_is_the_overlay_with_six_parameters(
    control_plane: ControlPlane, unique: str
) -> None:
    overlay = render(control_plane, OPENSHIFT)
    processed = process_template(TEMPLATE_DEFAULTS)
    assert pod_spec(processed).pop("nodeSelector") == {}  # the overlay sets none

    def key(doc: dict[str, Any]) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    assert sorted(processed, key=key) == sorted(overlay, key=key), (
        "template.yaml drifted from manifests/openshift: run "
        "python -m tests.integration.test_manifests --write-template"
    )
    other = f"tpl-{unique}"
    objects = process_template(
        {
            "NAMESPACE": other,
            "GLUSTER_HOSTS": "gl1;gl2",
            "SCHEDULE": "0 * * * *",
            "DEBUG": "true",
            "IMAGE": "r/x:1",
            "NODE_SELECTOR_JSON": '{"node-role.kubernetes.io/infra": "true"}',
        }
    )
    assert "${" not in json.dumps(objects)
    assert by_kind(objects, "Namespace")["metadata"]["name"] == other
    for doc in objects:
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == other
        for subject in doc.get("subjects", []):
            assert subject["namespace"] == other
    assert by_kind(objects, "CronJob")["spec"]["schedule"] == "0 * * * *"
    assert by_kind(objects, "ConfigMap")["data"]["GLUSTER_HOSTS"] == "gl1;gl2"
    assert by_kind(objects, "ConfigMap")["data"]["DEBUG"] == "true"
    assert pod_spec(objects)["containers"][0]["image"] == "r/x:1"
    assert pod_spec(objects)["nodeSelector"] == {"node-role.kubernetes.io/infra": "true"}
    control_plane.run_kubectl("create", "namespace", other)
    try:
        result = control_plane.server_dry_run("-f", "-", input_text=yaml.safe_dump_all(objects))
        assert result.returncode == 0, result.stderr
    finally:
        control_plane.run_kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_openshift_template_applies_as_plain_objects(installed: ControlPlane) -> None:
    """What `oc process ... | oc apply -f -` sends, applied for real over the installed base:
    the base objects stay as they are, the SCC grant is added."""
    objects = process_template(TEMPLATE_DEFAULTS)

    def ours() -> str:
        # Spec and metadata, not status or resourceVersion: the CronJob controller may write
        # status meanwhile. (Not metadata.generation: 1.21 does not set it on CronJobs.)
        # Not kubectl's last-applied annotation either: the template sends nodeSelector: {}
        # (NODE_SELECTOR_JSON's default), which the server drops from the spec.
        obj = installed.get_json("cronjob", "gluster-recycler", "-n", NS)
        meta = obj["metadata"]
        annotations = dict(meta.get("annotations") or {})
        annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
        return json.dumps((obj["spec"], meta.get("labels"), annotations), sort_keys=True)

    before = ours()
    try:
        result = installed.run_kubectl(
            "apply",
            installed.strict_validation,
            "-f",
            "-",
            input_text=yaml.safe_dump_all(objects),
        )
        assert not unexpected_warnings(result.stderr), result.stderr
        assert may_use_scc(installed, "privileged")
        assert ours() == before, "the CronJob changed"
    finally:
        installed.run_kubectl(
            "delete",
            "rolebinding",
            "gluster-recycler-scc-privileged",
            "-n",
            NS,
            check=False,
        )
        installed.run_kubectl(
            "delete", "clusterrole", "gluster-recycler-scc-privileged", check=False
        )


# ---- a real pass with the ServiceAccount's token ------------------------------------------


def failed_gluster_pv(plane: ControlPlane, volume: Any, unique: str, label: str) -> str:
    """A glusterfs PV with Recycle policy whose claim was deleted: phase Failed."""
    ns, name = f"app-{unique}", f"grt-mf-{unique}"
    admin = f"gl-{unique}"  # the admin's Endpoints: not in the claim's (tenant's) namespace
    plane.run_kubectl("create", "namespace", ns)
    plane.run_kubectl("create", "namespace", admin)
    plane.apply(endpoints("glusterfs-cluster", admin, list(volume.hosts)))
    plane.apply(gluster_pv(name, volume.path, endpoints_namespace=admin, labels={label: unique}))
    plane.apply(pvc("data", ns, volume_name=name))
    wait_for(lambda: phase(plane, name) == "Bound", what="the PV to bind")
    plane.run_kubectl("delete", "pvc", "data", "-n", ns, "--wait=false")
    wait_for(lambda: phase(plane, name) == "Failed", what="the PV to fail recycling")
    return name


def volume_entries(server: Any, volume: Any) -> list[str]:
    with server.mounted(volume) as root:
        return sorted(os.listdir(root))


def recycled_events(plane: ControlPlane, pv: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = plane.get_json(
        "events", "-n", "default", f"--field-selector=involvedObject.name={pv}"
    )["items"]
    return [e for e in items if e["reason"] == "Recycled"]


@pytest.mark.gluster
def test_pass_with_the_service_account_token_recycles_a_volume(
    installed: ControlPlane,
    gluster_server: Any,
    gluster_volume: Any,
    unique: str,
    tmp_path: Path,
) -> None:
    volume = gluster_volume()
    gluster_server.write_files(volume, {"a.txt": "a", ".hidden": "h", "dir/b.txt": "b" * 5000})
    assert volume_entries(gluster_server, volume) == [".hidden", "a.txt", "dir"]
    name = failed_gluster_pv(installed, volume, unique, "grt-manifests")
    kubeconfig = installed.service_account_kubeconfig(
        NS, "gluster-recycler", tmp_path / "sa.kubeconfig"
    )
    token = token_of(kubeconfig)
    assert len(token) > 100

    result = run_pass(
        kubeconfig,
        "--min-age",
        "0",
        "--selector",
        f"grt-manifests={unique}",
        "--mount-root",
        str(tmp_path / "mounts"),
        "--debug",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 recycled, 0 failed" in result.stdout, output
    wait_for(lambda: phase(installed, name) == "Available", timeout=30, what="PV Available")
    assert installed.get_json("pv", name)["spec"].get("claimRef") is None
    assert volume_entries(gluster_server, volume) == []
    assert recycled_events(installed, name), "no Recycled Event on the PV"
    lease = installed.get_json("lease", "gluster-recycler", "-n", NS)
    assert not lease["spec"].get("holderIdentity"), "the lease was not released"
    # --debug really logged (API requests), and never the token or an Authorization header.
    assert "api GET" in output and "DEBUG" in output, output[-2000:]
    assert token not in output
    assert token[:40] not in output and token[-40:] not in output
    assert "authorization" not in output.lower()


@pytest.mark.gluster
def test_recreate_mode_with_the_service_account_token(
    installed: ControlPlane,
    gluster_server: Any,
    gluster_volume: Any,
    unique: str,
    tmp_path: Path,
) -> None:
    volume = gluster_volume()
    gluster_server.write_files(volume, {"old.txt": "x", "d/e/f.txt": "y"})
    name = failed_gluster_pv(installed, volume, unique, "grt-manifests-recreate")
    before = installed.get_json("pv", name)["metadata"]
    kubeconfig = installed.service_account_kubeconfig(
        NS, "gluster-recycler", tmp_path / "sa.kubeconfig"
    )
    result = run_pass(
        kubeconfig,
        "--mode",
        "recreate",
        "--min-age",
        "0",
        "--selector",
        f"grt-manifests-recreate={unique}",
        "--mount-root",
        str(tmp_path / "mounts"),
        "--debug",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 recycled, 0 failed" in result.stdout, output
    after = installed.get_json("pv", name)
    assert after["metadata"]["uid"] != before["uid"], "the PV was not re-created"
    assert after["metadata"]["labels"] == before["labels"]
    assert "gluster-recycler/last-recycled" in after["metadata"]["annotations"]
    wait_for(lambda: phase(installed, name) == "Available", timeout=30, what="PV Available")
    assert volume_entries(gluster_server, volume) == []
    assert recycled_events(installed, name)
    record = installed.get_json("configmap", "gluster-recycler-recreate", "-n", NS)
    assert not record.get("data"), f"recreate record left behind: {record.get('data')}"
    assert token_of(kubeconfig) not in output


def test_a_service_account_without_the_roles_gets_exit_code_3(
    installed: ControlPlane, unique: str, tmp_path: Path
) -> None:
    """The same pass with an unbound ServiceAccount: refused by RBAC, exit 3, nothing done."""
    sa = f"nobody-{unique}"
    installed.run_kubectl("create", "serviceaccount", sa, "-n", NS)
    try:
        kubeconfig = installed.service_account_kubeconfig(NS, sa, tmp_path / "nobody.kubeconfig")
        result = run_pass(kubeconfig, "--min-age", "0", "--mount-root", str(tmp_path / "m"))
        assert result.returncode == int(ExitCode.CLUSTER_UNAVAILABLE), result.stdout + result.stderr
        assert "forbidden" in (result.stdout + result.stderr).lower()
    finally:
        installed.run_kubectl("delete", "serviceaccount", sa, "-n", NS, check=False)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-template"]:
        print(__doc__)
        raise SystemExit(2)
    rendered = subprocess.run(
        [str(control_plane_bin_dir() / "kubectl"), "kustomize", str(OPENSHIFT)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    TEMPLATE.write_text(template_from_overlay([d for d in yaml.safe_load_all(rendered) if d]))
    print(f"wrote {TEMPLATE}")


# ---- the restricted (gfapi) variants -------------------------------------------------------

RESTRICTED = REPO / "overlays" / "restricted"
OPENSHIFT_RESTRICTED = REPO / "overlays" / "openshift-restricted"


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = pod_spec(docs)["containers"][0]
    return container


def test_restricted_overlays_render_an_unprivileged_gfapi_pod(control_plane: ControlPlane) -> None:
    # On every version, with the kustomize of its own kubectl: v2.0.3 (kubectl 1.21) does not
    # know batch/v1 CronJob, and a strategic merge would replace the container list (image
    # and mounts lost); the overlays use JSON patches for the CronJob.
    for target, fixed_uid in ((RESTRICTED, True), (OPENSHIFT_RESTRICTED, False)):
        docs = render(control_plane, target)
        container = _container(docs)
        assert container["image"] == _container(render(control_plane, MANIFESTS))["image"]
        assert {"/var/lib/gluster-recycler", "/tmp"} <= {
            m["mountPath"] for m in container["volumeMounts"]
        }
        assert {d["kind"] for d in docs} == KINDS, target  # no SCC grant in either
        labels = by_kind(docs, "Namespace")["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        spec = pod_spec(docs)
        container = _container(docs)
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["WIPE_BACKEND"] == "gfapi"
        assert env["GLUSTER_LOG_DIR"].startswith("/tmp/")
        assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}
        sc = container["securityContext"]
        assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["readOnlyRootFilesystem"] is True and sc["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not spec["shareProcessNamespace"]
        uids = {spec["securityContext"].get("runAsUser"), sc.get("runAsUser")}
        assert uids == ({10001} if fixed_uid else {None}), (target, uids)


def _pod_from(docs: list[dict[str, Any]], name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": pod_spec(docs),
    }


def test_restricted_pods_pass_a_namespace_that_enforces_restricted(
    control_plane: ControlPlane, unique: str
) -> None:
    """Pod Security admission enforces on pods only (on templates it warns): the CronJob is
    dry-run applied without a warning, and pods built from its template are dry-run created.
    The privileged pod of manifests/ is refused there: the check can fail."""
    if not control_plane.at_least(23):
        pytest.skip(f"Pod Security admission needs 1.23+; this is {control_plane.version}")
    namespace = f"grt-restricted-{unique}"
    control_plane.run_kubectl("create", "namespace", namespace)
    try:
        for level in ("enforce", "warn"):
            control_plane.run_kubectl(
                "label",
                "namespace",
                namespace,
                f"pod-security.kubernetes.io/{level}=restricted",
            )
        control_plane.run_kubectl("create", "serviceaccount", "gluster-recycler", "-n", namespace)
        for target in (RESTRICTED, OPENSHIFT_RESTRICTED):
            docs = render(control_plane, target)
            cronjob = by_kind(docs, "CronJob")
            cronjob["metadata"]["namespace"] = namespace
            applied = control_plane.server_dry_run("-f", "-", input_text=yaml.safe_dump(cronjob))
            assert applied.returncode == 0, applied.stderr
            assert "PodSecurity" not in applied.stderr, applied.stderr
            created = control_plane.run_kubectl(
                "create",
                "--dry-run=server",
                "-f",
                "-",
                input_text=yaml.safe_dump(_pod_from(docs, "restricted", namespace)),
                check=False,
            )
            assert created.returncode == 0, (target, created.stderr)
        refused = control_plane.run_kubectl(
            "create",
            "--dry-run=server",
            "-f",
            "-",
            input_text=yaml.safe_dump(
                _pod_from(render(control_plane, MANIFESTS), "privileged", namespace)
            ),
            check=False,
        )
        assert refused.returncode != 0
        assert "violates PodSecurity" in refused.stderr, refused.stderr
    finally:
        control_plane.run_kubectl("delete", "namespace", namespace, "--wait=false", check=False)


TLS = MANIFESTS / "components" / "tls"
TLS_MANAGEMENT = MANIFESTS / "components" / "tls-management"


def _with_components(tmp_path: Path, base: Path, *components: Path) -> Path:
    """A kustomization of an admin's own: `base` plus `components` (relative paths: kustomize
    refuses absolute ones)."""
    here = tmp_path / f"with-{base.name}"
    here.mkdir(parents=True)
    text = yaml.safe_dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(base, here)],
            "components": [os.path.relpath(c, here) for c in components],
        }
    )
    (here / "kustomization.yaml").write_text(text)
    return here


def test_tls_components_mount_the_fork_secret_and_set_the_options(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """The appuio fork's Secret (`gluster-recycler`, keys tls.crt/tls.key/tls.ca) at its
    path, /recycler-secrets; with management TLS also the keys in /usr/lib/ssl and a
    writable /var/lib/glusterd. Every combination passes strict server-side validation."""
    # kubectl 1.21 embeds kustomize v2.0.3, which has no components (kustomize 3.7+).
    needs(control_plane, 22, "kustomize components (kustomize 3.7+)")
    control_plane.run_kubectl("apply", "-f", str(MANIFESTS / "namespace.yaml"))
    bases = [MANIFESTS, OPENSHIFT, RESTRICTED, OPENSHIFT_RESTRICTED]
    for base in bases + ([NEWER] if control_plane.at_least(26) else []):
        for components in ((TLS,), (TLS, TLS_MANAGEMENT)):
            target = _with_components(tmp_path / f"{len(components)}", base, *components)
            docs = render(control_plane, target)
            spec = pod_spec(docs)
            container = _container(docs)
            env = {e["name"]: e.get("value") for e in container["env"]}
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in spec["volumes"]}
            assert env["GLUSTER_TLS_DIR"] == "/recycler-secrets"
            assert mounts["/recycler-secrets"] == {
                "name": "tls",
                "mountPath": "/recycler-secrets",
                "readOnly": True,
            }
            assert volumes["tls"]["secret"] == {
                "secretName": "gluster-recycler",
                "defaultMode": 0o444,
            }
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            if TLS_MANAGEMENT in components:
                assert env["GLUSTER_TLS_MANAGEMENT"] == "true"
                for name, key in zip(
                    ("glusterfs.pem", "glusterfs.key", "glusterfs.ca"),
                    ("tls.crt", "tls.key", "tls.ca"),
                    strict=True,
                ):
                    mount = mounts[f"/usr/lib/ssl/{name}"]
                    assert (mount["name"], mount["subPath"]) == ("tls", key)
                secure = mounts["/var/lib/glusterd"]
                assert secure["readOnly"] is True
                generated = volumes[secure["name"]]["configMap"]["name"]
                configmap = by_kind(docs, "ConfigMap", generated)
                assert configmap["data"] == {"secure-access": ""}
                assert configmap["metadata"]["namespace"] == NS
            else:
                assert "GLUSTER_TLS_MANAGEMENT" not in env
            result = control_plane.server_dry_run("-k", str(target))
            assert result.returncode == 0, (base, components, result.stderr)


def test_restricted_pod_with_the_tls_components_passes_restricted(
    control_plane: ControlPlane, unique: str, tmp_path: Path
) -> None:
    """Secret and ConfigMap volumes are allowed under the restricted standard: the pod of the
    unprivileged overlays with both TLS components is admitted there."""
    needs(control_plane, 23, "kustomize components and Pod Security admission")
    namespace = f"grt-restricted-tls-{unique}"
    control_plane.run_kubectl("create", "namespace", namespace)
    try:
        control_plane.run_kubectl(
            "label",
            "namespace",
            namespace,
            "pod-security.kubernetes.io/enforce=restricted",
        )
        control_plane.run_kubectl("create", "serviceaccount", "gluster-recycler", "-n", namespace)
        for base in (RESTRICTED, OPENSHIFT_RESTRICTED):
            target = _with_components(tmp_path, base, TLS, TLS_MANAGEMENT)
            pod = _pod_from(render(control_plane, target), "restricted-tls", namespace)
            created = control_plane.run_kubectl(
                "create",
                "--dry-run=server",
                "-f",
                "-",
                input_text=yaml.safe_dump(pod),
                check=False,
            )
            assert created.returncode == 0, (base, created.stderr)
    finally:
        control_plane.run_kubectl("delete", "namespace", namespace, "--wait=false", check=False)


# ---- a downstream kustomization: a mirror, the monitoring component -----------------------

MIRROR = "mirror.example.com/tools/gluster-recycler"
DIGEST = "sha256:" + "ab" * 32


def test_downstream_images_entry_points_every_variant_at_a_mirror(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """What the README tells an admin to write (`images:` for the released image's name),
    rendered by this version's own kubectl, takes effect on every variant: the base renames
    nothing, so the entry matches. kubectl 1.21 (kustomize v2.0.3) takes the base directory
    under `bases:`, as the README says."""
    legacy = not control_plane.at_least(22)
    # The name an admin sees in manifests/cronjob.yaml is the name the entry must match:
    # a base that renamed it (as 0.1.0's images: did) would make the entry match nothing.
    cronjob = yaml.safe_load((MANIFESTS / "cronjob.yaml").read_text())
    written = pod_spec([cronjob])["containers"][0]["image"]
    name = written.rsplit(":", 1)[0]
    variants = [MANIFESTS, OPENSHIFT, RESTRICTED, OPENSHIFT_RESTRICTED, OPENSHIFT_48, DRY_RUN]
    variants += [NEWER] if control_plane.at_least(26) else []
    for base in variants:
        # Unchanged, every variant names the released image of this version.
        assert _container(render(control_plane, base))["image"] == IMAGE, base
        target = downstream(
            tmp_path / base.name, base, image=f"{MIRROR}:{VERSION}-1", legacy=legacy, name=name
        )
        rendered = _container(render(control_plane, target))["image"]
        assert rendered == f"{MIRROR}:{VERSION}-1", (base, rendered)
    # By digest, as a mirror pinned to the release's digest.
    pinned = downstream(tmp_path / "digest", MANIFESTS, legacy=legacy)
    doc = yaml.safe_load((pinned / "kustomization.yaml").read_text())
    doc["images"] = [{"name": name, "newName": MIRROR, "digest": DIGEST}]
    (pinned / "kustomization.yaml").write_text(yaml.safe_dump(doc))
    assert _container(render(control_plane, pinned))["image"] == f"{MIRROR}@{DIGEST}"
    # ...which is the released image's full name, as the README's example writes it.
    assert (written, name) == (IMAGE, RELEASED)
    # The old symbolic name matches nothing now either way: the README names the full one.
    assert RELEASED in (REPO / "README.md").read_text()


def test_monitoring_component_adds_the_prometheus_rule(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    needs(control_plane, 22, "kustomize components (kustomize 3.7+)")
    base = render(control_plane, MANIFESTS)
    docs = render(control_plane, downstream(tmp_path / "m", MANIFESTS, components=(MONITORING,)))
    extra = [d for d in docs if d not in base]
    assert [d for d in docs if d in base] == base
    (rule,) = extra
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert rule["metadata"]["namespace"] == NS
    source = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert rule["spec"] == source["spec"]


# ---- dry run first ------------------------------------------------------------------------


def test_dry_run_overlay_sets_dry_run_and_nothing_else(control_plane: ControlPlane) -> None:
    base = render(control_plane, MANIFESTS)
    docs = render(control_plane, DRY_RUN)
    assert [d for d in docs if d["kind"] != "ConfigMap"] == [
        d for d in base if d["kind"] != "ConfigMap"
    ]
    data = by_kind(docs, "ConfigMap")["data"]
    assert data == {**by_kind(base, "ConfigMap")["data"], "DRY_RUN": "true"}
    env = {k: str(v) for k, v in data.items()}
    assert load_config([], env, namespace_file="/nonexistent").dry_run


def dry_run_job(plane: ControlPlane, name: str) -> dict[str, Any]:
    """The README's one-off dry-run Job: a Job from the CronJob with DRY_RUN=true in the
    container's env (which wins over the ConfigMap's envFrom), created before it starts."""
    job = plane.run_kubectl(
        "create",
        "job",
        "--from=cronjob/gluster-recycler",
        name,
        "-n",
        NS,
        "--dry-run=client",
        "-o",
        "yaml",
    ).stdout
    patched = plane.run_kubectl(
        "set", "env", "--local", "-f", "-", "DRY_RUN=true", "-o", "yaml", input_text=job
    ).stdout
    plane.run_kubectl("create", "-f", "-", input_text=patched)
    return plane.get_json("job", name, "-n", NS)


def live_settings(plane: ControlPlane, tmp_path: Path, unique: str) -> dict[str, str]:
    """The installed ConfigMap's data, as envFrom gives it to the pod, and what this test
    needs on top: only its own PV, no minimum age, mounts under tmp_path."""
    data = plane.get_json("configmap", "gluster-recycler-config", "-n", NS).get("data", {})
    return {
        **data,
        "PV_SELECTOR": f"grt-manifests-dry={unique}",
        "MIN_AGE": "0",
        "MOUNT_ROOT": str(tmp_path / "mounts"),
    }


@pytest.mark.gluster
def test_dry_run_job_and_dry_run_overlay_remove_nothing(
    installed: ControlPlane,
    gluster_server: Any,
    gluster_volume: Any,
    unique: str,
    tmp_path: Path,
) -> None:
    """A pass with the configuration of the one-off dry-run Job (the installed ConfigMap plus
    the Job's env), then one with the dry-run overlay applied for real: each reports the
    volume as would-recycle and leaves its files and the PV as they were."""
    volume = gluster_volume()
    gluster_server.write_files(volume, {"keep.txt": "k", "d/e.txt": "e"})
    name = failed_gluster_pv(installed, volume, unique, "grt-manifests-dry")
    kubeconfig = installed.service_account_kubeconfig(NS, "gluster-recycler", tmp_path / "sa")
    job_name = f"gluster-recycler-dry-run-{unique}"
    try:
        job = dry_run_job(installed, job_name)
        (container,) = job["spec"]["template"]["spec"]["containers"]
        job_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        assert job_env["DRY_RUN"] == "true"
        assert container["envFrom"] == [{"configMapRef": {"name": "gluster-recycler-config"}}]
        settings = live_settings(installed, tmp_path, unique)
        assert settings["DRY_RUN"] == "false"  # the installed ConfigMap: the Job's env wins
        settings.update({k: v for k, v in job_env.items() if k not in ("MOUNT_ROOT",)})
        result = run_pass(kubeconfig, settings=settings)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "1 would-recycle" in result.stdout, output
        assert volume_entries(gluster_server, volume) == ["d", "keep.txt"]
        assert phase(installed, name) == "Failed"

        installed.run_kubectl("apply", "-k", str(DRY_RUN))
        settings = live_settings(installed, tmp_path, unique)
        assert settings["DRY_RUN"] == "true"
        result = run_pass(kubeconfig, settings=settings)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "1 would-recycle" in result.stdout, output
        assert volume_entries(gluster_server, volume) == ["d", "keep.txt"]
        assert phase(installed, name) == "Failed"
        assert not recycled_events(installed, name)
    finally:
        installed.run_kubectl("delete", "job", job_name, "-n", NS, "--wait=false", check=False)
        installed.run_kubectl("apply", "-k", str(MANIFESTS))
    data = installed.get_json("configmap", "gluster-recycler-config", "-n", NS)["data"]
    assert data["DRY_RUN"] == "false", "applying manifests/ again ends the dry run"


# ---- OpenShift 4.8-4.10, unprivileged -----------------------------------------------------


def test_openshift_48_overlay_is_openshift_restricted_without_seccomp(
    control_plane: ControlPlane,
) -> None:
    """The restricted SCC of 4.8-4.10 refuses any seccompProfile: none is set, no uid is
    fixed, and everything else is overlays/openshift-restricted's."""
    newer = render(control_plane, OPENSHIFT_RESTRICTED)
    docs = render(control_plane, OPENSHIFT_48)
    assert "seccompProfile" not in yaml.safe_dump_all(docs)
    spec = pod_spec(docs)
    sc = _container(docs)["securityContext"]
    assert "runAsUser" not in spec.get("securityContext", {}) and "runAsUser" not in sc
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert sc == {
        k: v for k, v in _container(newer)["securityContext"].items() if k != "seccompProfile"
    }
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["allowPrivilegeEscalation"] is False
    labels = by_kind(docs, "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"

    def without_seccomp(doc: dict[str, Any]) -> dict[str, Any]:
        doc = copy.deepcopy(doc)
        if doc["kind"] == "CronJob":
            pod_spec([doc])["securityContext"].pop("seccompProfile")
            _container([doc])["securityContext"].pop("seccompProfile")
        if doc["kind"] == "Namespace":
            doc["metadata"]["labels"] = labels
        return doc

    assert docs == [without_seccomp(d) for d in newer]


def test_openshift_48_pod_passes_a_namespace_that_enforces_baseline(
    control_plane: ControlPlane, unique: str
) -> None:
    """Should Pod Security admission be on (1.23), the pod without a seccomp profile passes
    the level its namespace enforces."""
    needs(control_plane, 23, "Pod Security admission")
    namespace = f"grt-baseline-{unique}"
    control_plane.run_kubectl("create", "namespace", namespace)
    try:
        control_plane.run_kubectl(
            "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=baseline"
        )
        control_plane.run_kubectl("create", "serviceaccount", "gluster-recycler", "-n", namespace)
        pod = _pod_from(render(control_plane, OPENSHIFT_48), "no-seccomp", namespace)
        created = control_plane.run_kubectl(
            "create", "--dry-run=server", "-f", "-", input_text=yaml.safe_dump(pod), check=False
        )
        assert created.returncode == 0, created.stderr
    finally:
        control_plane.run_kubectl("delete", "namespace", namespace, "--wait=false", check=False)


# ---- OpenShift, built in the cluster ------------------------------------------------------

OPENSHIFT_KINDS = {
    ("BuildConfig", "build.openshift.io/v1"),
    ("ImageStream", "image.openshift.io/v1"),
}


def test_openshift_build_overlay_builds_from_the_containerfile_and_follows_the_stream(
    control_plane: ControlPlane,
) -> None:
    """No OpenShift API here: the objects are checked offline against the fields
    openshift/api (build/v1, image/v1) requires and the documented trigger annotation; the
    Kubernetes objects pass strict server-side validation."""
    docs = render(control_plane, OPENSHIFT_BUILD)
    openshift = render(control_plane, OPENSHIFT)
    ours = [d for d in docs if (d["kind"], d["apiVersion"]) in OPENSHIFT_KINDS]
    kube = [d for d in docs if d not in ours]
    assert {(d["kind"], d["apiVersion"]) for d in ours} == OPENSHIFT_KINDS
    assert [d for d in kube if d["kind"] != "CronJob"] == [
        d for d in openshift if d["kind"] != "CronJob"
    ]
    stream = by_kind(docs, "ImageStream")
    build = by_kind(docs, "BuildConfig")
    for doc in (stream, build):
        assert doc["metadata"]["namespace"] == NS
        assert RECOMMENDED_LABELS.items() <= doc["metadata"]["labels"].items()
    assert stream["spec"]["lookupPolicy"] == {"local": True}
    spec = build["spec"]
    assert spec["source"]["type"] == "Git"
    assert re.fullmatch(
        r"https://github\.com/[\w.-]+/gluster-recycler\.git", spec["source"]["git"]["uri"]
    )
    assert spec["source"]["git"]["ref"] == f"v{VERSION}"
    strategy = spec["strategy"]
    assert strategy["type"] == "Docker"
    docker = strategy["dockerStrategy"]
    assert docker["dockerfilePath"] == "Containerfile" and (REPO / "Containerfile").exists()
    declared = set(re.findall(r"^ARG ([A-Z_]+)", (REPO / "Containerfile").read_text(), re.M))
    args = {a["name"]: a["value"] for a in docker["buildArgs"]}
    assert set(args) <= declared, set(args) - declared
    assert args["VERSION"] == VERSION
    tag = f"{stream['metadata']['name']}:latest"
    assert spec["output"]["to"] == {"kind": "ImageStreamTag", "name": tag}
    assert {"type": "ConfigChange"} in spec["triggers"]
    # The CronJob names the tag, resolved per pod; the trigger writes each build's digest.
    cronjob = by_kind(docs, "CronJob")
    container = _container(docs)
    assert container["image"] == tag
    template_meta = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
    assert template_meta["annotations"] == {"alpha.image.policy.openshift.io/resolve-names": "*"}
    (trigger,) = json.loads(cronjob["metadata"]["annotations"]["image.openshift.io/triggers"])
    assert trigger["from"] == {"kind": "ImageStreamTag", "name": tag}
    assert trigger["fieldPath"] == (
        f'spec.jobTemplate.spec.template.spec.containers[?(@.name=="{container["name"]}")].image'
    )
    # Apart from the image and those annotations, the CronJob is the OpenShift overlay's.
    same = copy.deepcopy(cronjob)
    same["metadata"].pop("annotations")
    same["spec"]["jobTemplate"]["spec"]["template"]["metadata"].pop("annotations")
    _container([same])["image"] = IMAGE
    assert same == by_kind(openshift, "CronJob")
    control_plane.run_kubectl("apply", "-f", str(MANIFESTS / "namespace.yaml"))
    result = control_plane.server_dry_run("-f", "-", input_text=yaml.safe_dump_all(kube))
    assert result.returncode == 0, result.stderr
