"""Container image references used by the components and the compiled pipeline.

One ``REGISTRY``/``TAG`` setting names every image, so the compiled YAML and the images
``make images`` builds always match. Override with ``QUBEFLOW_IMAGE_REGISTRY`` and
``QUBEFLOW_IMAGE_TAG`` at compile time (the Makefile passes its ``REGISTRY``/``TAG``).
"""

from __future__ import annotations

import os

from components.versions import installed_versions

REGISTRY = os.environ.get("QUBEFLOW_IMAGE_REGISTRY", "ghcr.io/qubeflow")
TAG = os.environ.get("QUBEFLOW_IMAGE_TAG", installed_versions("qubeflow").get("qubeflow", "0.1.0"))


def image(name: str) -> str:
    return f"{REGISTRY}/{name}:{TAG}"


#: Data prep, classical training and registry promotion (also runs the exact simulator).
BASE_IMAGE = image("qubeflow-base")
#: Default image of the quantum step; the pipeline parameter ``quantum_image`` overrides it.
QUANTUM_IMAGE = BASE_IMAGE

#: Compile-time cluster settings for every task (the Makefile's PULL_POLICY / PULL_SECRETS).
PULL_POLICY = os.environ.get("QUBEFLOW_IMAGE_PULL_POLICY", "IfNotPresent")
PULL_SECRETS = [
    s.strip() for s in os.environ.get("QUBEFLOW_IMAGE_PULL_SECRETS", "").split(",") if s.strip()
]


#: The pip extra of the KServe serving image (MLServer + mlserver-mlflow; manifests/base/serving.yaml).
SERVING_EXTRA = "serving"


def extra_image(extra: str) -> str:
    """The image of a backend family's pip extra (``BackendFamily.extra``); "base" or "" is
    the base image."""
    if extra == SERVING_EXTRA:
        return image("qubeflow-serving")
    return BASE_IMAGE if extra in ("", "base") else image(f"qubeflow-quantum-{extra}")
