"""Which container images may run the quantum step, the one step that receives the IBM
Quantum token. ``quantum_image`` is a pipeline parameter anyone who can submit a run may set;
the cluster's allow-list is not: it is the ``QUBEFLOW_QUANTUM_IMAGES`` entry of the
``qubeflow-quantum-images`` ConfigMap (deployed from Git), which the run's preflight — running
in the base image, before the quantum step exists — reads and enforces.
"""

from __future__ import annotations

import os

from components.errors import ConfigError

ALLOWLIST_ENV = "QUBEFLOW_QUANTUM_IMAGES"
#: The ConfigMap (name compiled into the pipeline, not a parameter) holding the allow-list.
ALLOWLIST_CONFIGMAP = "qubeflow-quantum-images"


def allowed_images(raw: str | None = None) -> list[str]:
    """The allow-list: comma-separated image references or repository prefixes ending in
    ``/``, ``:`` or ``@`` (e.g. ``ghcr.io/qubeflow/qubeflow-quantum@``)."""
    text = os.environ.get(ALLOWLIST_ENV, "") if raw is None else raw
    return [item.strip() for item in text.split(",") if item.strip()]


def check_quantum_image(image: str, allowed: list[str] | None = None) -> str:
    """Raise ConfigError (field ``quantum_image``) unless ``image`` is on the allow-list; with
    no allow-list (a local run) every image is accepted. Returns what was decided."""
    allowed = allowed_images() if allowed is None else allowed
    if not allowed:
        return f"quantum image {image}: no allow-list ({ALLOWLIST_ENV} unset), accepted"
    for entry in allowed:
        if image == entry or (entry[-1] in "/:@" and image.startswith(entry)):
            return f"quantum image {image}: allowed by {entry!r}"
    raise ConfigError(
        f"{image!r} is not on this cluster's quantum image allow-list {allowed} (ConfigMap "
        f"{ALLOWLIST_CONFIGMAP}, key {ALLOWLIST_ENV}): the quantum step receives the IBM "
        "Quantum token, so it runs only in allow-listed images; nothing ran",
        field="quantum_image",
    )
