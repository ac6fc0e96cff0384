"""Migrating from the appuio fork by following docs/upgrade.md, on the sandbox.

Objects shaped and named like the fork's are installed, then the doc's `sh` blocks are run in
order, exactly as written (read from the doc, so the doc and the test cannot drift). Afterwards
the fork is gone and this tool's ServiceAccount can still run a pass: its RBAC did not go with
the fork's objects of the same name.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.scenario import REPO
from tests.integration.test_manifests import run_pass
from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.objects import wait_for

pytestmark = pytest.mark.cluster
DOC = REPO / "docs" / "upgrade.md"
SECTION = "## Migrating from the appuio fork, step by step"
FORK_NS = "appuio-infra"
NS = "gluster-recycler"
SA = "system:serviceaccount:gluster-recycler:gluster-recycler"


def doc_blocks(section: str = SECTION) -> list[tuple[str, str]]:
    """(info string, code) of each fenced block of a section of the doc, in order."""
    text = DOC.read_text().split(section, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```([^\n]*)\n(.*?)^```", text, flags=re.M | re.S)


def install_fork(plane: ControlPlane) -> None:
    """What the fork's template leaves in a cluster (no SCC: the sandbox is not OpenShift)."""
    plane.run_kubectl("create", "namespace", FORK_NS)
    plane.run_kubectl("create", "serviceaccount", "gluster-recycler", "-n", FORK_NS)
    plane.run_kubectl(
        "create",
        "clusterrole",
        "gluster-recycler",
        "--verb=get,list,create,delete,update",
        "--resource=persistentvolumes",
    )
    plane.run_kubectl(
        "create",
        "clusterrolebinding",
        "gluster-recycler",
        "--clusterrole=gluster-recycler",
        f"--serviceaccount={FORK_NS}:gluster-recycler",
    )
    plane.run_kubectl(
        "create",
        "secret",
        "generic",
        "gluster-recycler",
        "-n",
        FORK_NS,
        "--from-literal=tls.crt=CERT",
        "--from-literal=tls.key=KEY",
        "--from-literal=tls.ca=CA",
    )
    plane.run_kubectl(
        "create",
        "cronjob",
        "gluster-recycler",
        "-n",
        FORK_NS,
        "--image=docker.io/appuio/gluster-recycler:v1",
        "--schedule=*/5 * * * *",
    )


def run_doc_blocks(plane: ControlPlane, section: str) -> None:
    """Run the section's `sh` blocks as written, with the sandbox's kubectl."""
    env = {
        **os.environ,
        "PATH": f"{plane.kubectl.parent}:{os.environ['PATH']}",
        "KUBECONFIG": str(plane.kubeconfig),
    }
    for info, code in doc_blocks(section):
        if info != "sh":
            continue
        step = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert step.returncode == 0, (code, step.stdout, step.stderr)


def test_the_leftovers_of_0_1_go_and_a_forks_objects_of_that_name_stay(
    control_plane: ControlPlane,
) -> None:
    kc = control_plane.run_kubectl
    section = "## From gluster-recycler 0.1"
    assert [info for info, _ in doc_blocks(section)] == ["sh"]
    try:
        for labelled in (True, False):  # 0.1's objects, then the fork's
            kc("create", "clusterrole", "gluster-recycler", "--verb=list", "--resource=pods")
            kc(
                "create",
                "clusterrolebinding",
                "gluster-recycler",
                "--clusterrole=gluster-recycler",
                "--serviceaccount=gluster-recycler:gluster-recycler",
            )
            if labelled:
                kc(
                    "label",
                    "clusterrole,clusterrolebinding",
                    "gluster-recycler",
                    "app.kubernetes.io/name=gluster-recycler",
                )
            run_doc_blocks(control_plane, section)
            left = kc(
                "get",
                "clusterrole,clusterrolebinding",
                "gluster-recycler",
                "--ignore-not-found",
                "-o",
                "name",
            ).stdout.split()
            assert len(left) == (0 if labelled else 2), (labelled, left)
    finally:
        kc(
            "delete",
            "clusterrole,clusterrolebinding",
            "gluster-recycler",
            "--ignore-not-found",
            check=False,
        )


def test_doc_has_the_steps() -> None:
    infos = [info for info, _ in doc_blocks()]
    assert infos.count("sh") == 4 and "sh openshift" in infos, infos


def test_following_docs_upgrade_md_leaves_a_working_install(
    control_plane: ControlPlane, unique: str, tmp_path: Path
) -> None:
    install_fork(control_plane)
    try:
        run_doc_blocks(control_plane, SECTION)

        kc = control_plane.run_kubectl
        gone = kc("get", "clusterrole,clusterrolebinding", "gluster-recycler", "--ignore-not-found")
        assert not gone.stdout.strip(), gone.stdout
        assert not kc("get", "cronjob", "-n", FORK_NS, "-o", "name").stdout.strip()
        copied = control_plane.get_json("secret", "gluster-recycler", "-n", NS)
        assert copied["data"] == {
            key: base64.b64encode(value.encode()).decode()
            for key, value in (("tls.crt", "CERT"), ("tls.key", "KEY"), ("tls.ca", "CA"))
        }
        allowed = kc("auth", "can-i", "list", "persistentvolumes", f"--as={SA}", check=False)
        assert allowed.stdout.strip() == "yes", allowed.stdout + allowed.stderr

        # A Job from our CronJob gets a pod with our ServiceAccount, and a pass with that
        # ServiceAccount's token runs (a dry run: nothing selected is touched).
        job = f"after-fork-{unique}"
        kc("create", "job", "--from=cronjob/gluster-recycler", job, "-n", NS)
        try:
            pods = wait_for(
                lambda: control_plane.get_json("pods", "-n", NS, "-l", f"job-name={job}")["items"],
                timeout=60,
                what="the Job's pod",
            )
            assert pods[0]["spec"]["serviceAccountName"] == "gluster-recycler"
        finally:
            kc("delete", "job", job, "-n", NS, "--wait=true", check=False)
        kubeconfig = control_plane.service_account_kubeconfig(
            NS, "gluster-recycler", tmp_path / "sa.kubeconfig"
        )
        result = run_pass(
            kubeconfig,
            "--dry-run",
            "--selector",
            f"grt-migration={unique}",
            "--mount-root",
            str(tmp_path / "m"),
        )
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        control_plane.run_kubectl(
            "delete", "namespace", FORK_NS, "--ignore-not-found", "--wait=false", check=False
        )
        control_plane.run_kubectl(
            "delete",
            "clusterrole,clusterrolebinding",
            "gluster-recycler",
            "--ignore-not-found",
            check=False,
        )
