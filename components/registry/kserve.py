"""The champion on KServe, kept in step with the ``champion`` alias by Git, not by a controller.

The InferenceService ``qubeflow-champion`` (``manifests/base/serving.yaml``) serves the
champion's artifacts with MLServer's MLflow runtime. KServe cannot read a ``models:/`` URI, so
each overlay carries ``champion.env`` — the registered model, the champion's version and its
artifacts' storage URI — which a kustomize replacement writes into the InferenceService's
``storageUri``. After the gate moves ``champion``, :func:`write_champion_env` rewrites that file
from the registry; committing it is the deployment (Argo CD syncs the overlay, KServe rolls the
predictor). :func:`champion_env_is_current` tells whether Git lags the registry.
See docs/serving.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.errors import RegistryError
from components.registry import mlflow_names as names

#: Schemes KServe's storage initializer downloads from (the artifact store must be one).
KSERVE_SCHEMES = ("s3://", "gs://", "https://", "http://", "pvc://", "hdfs://", "webhdfs://")
#: The proxied-artifact scheme of an ``mlflow server --artifacts-destination`` store.
PROXIED_SCHEME = "mlflow-artifacts:"
#: The keys of ``champion.env`` (the ConfigMap ``qubeflow-champion`` the overlays generate).
ENV_KEYS = ("model_name", "model_version", "model_id", "storage_uri")


@dataclass(frozen=True)
class ServedChampion:
    """What the InferenceService serves: a registered model version and where its files are."""

    model_name: str
    version: str
    model_id: str
    storage_uri: str

    def to_env(self) -> dict[str, str]:
        return {
            "model_name": self.model_name,
            "model_version": self.version,
            "model_id": self.model_id,
            "storage_uri": self.storage_uri,
        }


def storage_uri(artifact_uri: str, artifacts_destination: str | None = None) -> str:
    """The URI KServe downloads ``artifact_uri`` from. A proxied location
    (``mlflow-artifacts:/<path>``) is mapped onto the server's ``--artifacts-destination``
    (``s3://mlflow-artifacts`` in the manifests); a direct one (``s3://...``) is kept. A local
    path is returned as an absolute path (loopback tests; KServe itself needs a store URI)."""
    if artifact_uri.startswith(PROXIED_SCHEME):
        if not artifacts_destination:
            raise RegistryError(
                f"{artifact_uri} is proxied by the tracking server: pass the server's "
                "--artifacts-destination (e.g. s3://mlflow-artifacts) to map it to a store URI",
                field="artifacts_destination",
            )
        path = artifact_uri[len(PROXIED_SCHEME) :].lstrip("/")
        artifact_uri = artifacts_destination.rstrip("/") + "/" + path
    if artifact_uri.startswith("file://"):
        artifact_uri = artifact_uri[len("file://") :]
    if artifact_uri.startswith("/") or ":" not in artifact_uri:
        return str(Path(artifact_uri).resolve())
    if not artifact_uri.startswith(KSERVE_SCHEMES):
        raise RegistryError(
            f"KServe's storage initializer cannot download {artifact_uri} "
            f"(schemes: {', '.join(KSERVE_SCHEMES)})",
            field="storage_uri",
        )
    return artifact_uri


def served_champion(
    client: Any,
    name: str,
    *,
    artifacts_destination: str | None = None,
    alias: str = names.ALIAS_CHAMPION,
) -> ServedChampion:
    """The version ``alias`` points at and its artifacts' storage URI (see :func:`storage_uri`)."""
    from components.registry.client import is_not_found

    try:
        mv = client.get_model_version_by_alias(name, alias)
    except Exception as exc:
        if is_not_found(exc):
            raise RegistryError(f"{name} has no @{alias} version to serve", field=alias) from exc
        raise
    # MLflow 3 registers a logged model (source models:/m-<id>); the client leaves the version's
    # model_id unset, so it is read from the source. The download URI is the artifacts' place.
    model_id = getattr(mv, "model_id", None) or ""
    if not model_id and str(mv.source).startswith("models:/m-"):
        model_id = str(mv.source)[len("models:/") :]
    location = client.get_model_version_download_uri(name, mv.version)
    return ServedChampion(
        name, str(mv.version), model_id, storage_uri(location, artifacts_destination)
    )


def champion_storage_uri(
    client: Any, name: str, *, artifacts_destination: str | None = None
) -> str:
    """The storage URI of ``models:/<name>@champion``'s artifacts."""
    return served_champion(client, name, artifacts_destination=artifacts_destination).storage_uri


def champion_env_text(champion: ServedChampion) -> str:
    """``champion.env`` for an overlay (``key=value`` lines; kustomize's env-file format)."""
    values = champion.to_env()
    for key, value in values.items():
        missing = not value and key != "model_id"
        if missing or any(c in value for c in "\n\r#"):
            raise RegistryError(f"champion.env: {key}={value!r} cannot be written", field=key)
    header = (
        f"# models:/{champion.model_name}@{names.ALIAS_CHAMPION}, written by "
        "components.registry.kserve.write_champion_env; commit it and Argo CD serves it."
    )
    return "\n".join([header, *(f"{k}={v}" for k, v in values.items())]) + "\n"


def read_champion_env(path: str | Path) -> dict[str, str]:
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def champion_env_is_current(path: str | Path, champion: ServedChampion) -> bool:
    """Whether ``path`` already names ``champion`` (nothing to commit)."""
    p = Path(path)
    return p.is_file() and read_champion_env(p) == champion.to_env()


def write_champion_env(
    path: str | Path,
    client: Any,
    name: str,
    *,
    artifacts_destination: str | None = None,
) -> ServedChampion | None:
    """Rewrite ``path`` (an overlay's ``champion.env``) for ``models:/<name>@champion``;
    returns the champion when the file changed, ``None`` when it already named it."""
    champion = served_champion(client, name, artifacts_destination=artifacts_destination)
    if champion_env_is_current(path, champion):
        return None
    Path(path).write_text(champion_env_text(champion))
    return champion
