"""The lineage a run records: the ``quantum.*`` tags from a calibration snapshot, package
versions, the git commit, and URIs with credentials removed (names in :mod:`.mlflow_names`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from components.registry import mlflow_names as names
from components.versions import installed_versions

#: Recorded on every run; the backend families add their SDKs (``BackendFamily.sdk_packages``).
CORE_PACKAGES = ("qubeflow", "kfp", "mlflow", "scikit-learn", "numpy", "pandas", "scipy")
GIT_COMMIT_ENV = "QUBEFLOW_GIT_COMMIT"
#: Base URL of the Kubeflow Pipelines UI (e.g. https://kubeflow.example.org/pipeline): runs
#: then link to their KFP page (tag ``kfp.run_url`` and the description).
KFP_UI_URL_ENV = "QUBEFLOW_KFP_UI_URL"


def kfp_run_url(run_id: str) -> str:
    """The KFP UI page of ``run_id``, or "" when $QUBEFLOW_KFP_UI_URL is unset (local runs)."""
    base = os.environ.get(KFP_UI_URL_ENV, "").strip().rstrip("/")
    if not base or not run_id or not base.startswith(("http://", "https://")):
        return ""
    return f"{base}/#/runs/details/{run_id}"


def quantum_tags(
    calibration: dict | None,
    *,
    fallback: bool,
    fallback_reason: str | None,
    serving_backend: str | None = None,
    agreement: dict[str, float] | None = None,
) -> dict[str, str]:
    """The ``quantum.*`` lineage tags from a calibration snapshot and the step's outcome."""
    tags = {names.TAG_QUANTUM_FALLBACK: str(bool(fallback)).lower()}
    if fallback:
        tags[names.TAG_QUANTUM_FALLBACK_REASON] = (fallback_reason or "unknown")[:4900]
    if calibration:
        execution = calibration.get("execution") or {}
        device = calibration.get("calibration") or {}
        depth = execution.get("circuit_depth")
        kind = str((calibration.get("backend") or {}).get("kind", ""))
        tags.update(
            {
                names.TAG_QUANTUM_BACKEND_KIND: kind,
                names.TAG_QUANTUM_CALIBRATION_HASH: str(calibration.get("calibration_hash", "")),
                names.TAG_QUANTUM_CALIBRATION_TIME: str(
                    device.get("timestamp") or f"none ({kind})"
                ),
                names.TAG_QUANTUM_SHOTS: str(execution.get("shots") or 0),
                names.TAG_QUANTUM_CIRCUIT_DEPTH: "unknown" if depth is None else str(depth),
            }
        )
    if serving_backend:
        tags[names.TAG_QUANTUM_SERVING_BACKEND] = serving_backend
    if agreement and "alignment" in agreement:
        tags[names.TAG_QUANTUM_KERNEL_ALIGNMENT] = f"{agreement['alignment']:.6f}"
        tags[names.TAG_QUANTUM_KERNEL_MAE] = f"{agreement['mean_abs_error']:.6f}"
    return tags


def package_versions() -> dict[str, str]:
    from components.quantum.backends import sdk_packages

    return installed_versions(*dict.fromkeys((*CORE_PACKAGES, *sdk_packages())))


def git_commit(start: str | Path | None = None) -> str:
    """``$QUBEFLOW_GIT_COMMIT``, else HEAD of the git checkout containing ``start`` (``-dirty``
    if modified), else of the checkout holding this package (run from another directory),
    else ``unknown`` (images carry no .git)."""
    env = os.environ.get(GIT_COMMIT_ENV)
    if env:
        return env
    own = Path(__file__).resolve().parent
    found = _head(Path(start)) if start else "unknown"
    return found if found != "unknown" else _head(own)


def _head(cwd: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def redact_uri(uri: str) -> str:
    """Drop any ``user:password@`` from a URI before it is logged anywhere."""
    if "://" in uri and "@" in uri.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri
