"""A kustomization of an admin's own, on top of ours: what the README tells users to write."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

# The image manifests/cronjob.yaml names (the release's); the name an `images:` entry matches.
RELEASED = "ghcr.io/gluster-recycler/gluster-recycler"


def downstream(
    here: Path,
    base: Path,
    *,
    image: str | None = None,
    components: tuple[Path, ...] = (),
    legacy: bool = False,
    name: str = RELEASED,
) -> Path:
    """Write `here/kustomization.yaml`: `base` as its resource, `image` (NAME[:TAG]) as an
    `images:` override of the image named `name` (the released image), and `components`.
    Paths are relative (kustomize refuses absolute ones). `legacy`: `bases:` for the
    kustomize of kubectl 1.21 (v2.0.3), which takes directories only there."""
    here.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(base, here)
    doc: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        ("bases" if legacy else "resources"): [rel],
    }
    if components:
        doc["components"] = [os.path.relpath(c, here) for c in components]
    if image is not None:
        new, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
        entry = {"name": name, "newName": new}
        if tag:
            entry["newTag"] = tag
        doc["images"] = [entry]
    (here / "kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return here
