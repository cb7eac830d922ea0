"""Where a tabular dataset comes from: a local CSV/Parquet file, an ``s3://`` object, or a
built-in dataset that ships with scikit-learn (no network needed).

``load_table`` returns the table and a :class:`DatasetSource` that records what was read
(URI, kind, format and a SHA-256 of the exact bytes) for lineage.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from components.errors import DataSourceError

#: Built-in datasets: real tabular data shipped inside scikit-learn, loaded offline.
BUILTIN_DATASETS: dict[str, str] = {
    "sklearn:breast_cancer": "load_breast_cancer",
    "sklearn:iris": "load_iris",
    "sklearn:wine": "load_wine",
}
#: Label column of built-in datasets.
BUILTIN_LABEL_COLUMN = "target"

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class DatasetSource:
    """What was loaded, for lineage."""

    uri: str
    kind: str  # "builtin" | "file" | "s3"
    format: str  # "csv" | "parquet" | "sklearn"
    sha256: str
    n_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_dataset_reference(uri: str) -> str:
    """The one check of a ``dataset`` value before any I/O: not empty, a known built-in name,
    a supported scheme. Returns it stripped; DataSourceError names what is wrong."""
    if not isinstance(uri, str) or not uri.strip():
        raise DataSourceError("is empty; give a file path, an s3:// URI or one of "
                              f"{sorted(BUILTIN_DATASETS)}", field="dataset")
    uri = uri.strip()
    if uri.startswith("sklearn:") and uri not in BUILTIN_DATASETS:
        raise DataSourceError(f"unknown built-in dataset {uri!r}; available: "
                              f"{sorted(BUILTIN_DATASETS)}", field="dataset")
    if "://" in uri and not uri.startswith(("file://", "s3://")):
        scheme = uri.split("://", 1)[0]
        raise DataSourceError(f"unsupported scheme {scheme!r} in {uri!r}; use a local path, "
                              "file://, s3:// or a built-in name", field="dataset")
    return uri


def load_table(uri: str) -> tuple[pd.DataFrame, DatasetSource]:
    """Load ``uri`` (path, ``file://``, ``s3://bucket/key`` or a built-in name) as a DataFrame."""
    uri = check_dataset_reference(uri)
    if uri.startswith("sklearn:"):
        return _load_builtin(uri)
    if uri.startswith("s3://"):
        return _load_s3(uri)
    return _load_file(uri.removeprefix("file://"))


def _format_for(name: str, uri: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in _FORMATS:
        raise DataSourceError(f"cannot tell the format of {uri!r}: expected one of "
                              f"{sorted(_FORMATS)}", field="dataset")
    return _FORMATS[suffix]


def _parse(data: bytes, fmt: str, uri: str) -> pd.DataFrame:
    try:
        if fmt == "csv":
            return pd.read_csv(io.BytesIO(data))
        return pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pandas raises many types for malformed files
        raise DataSourceError(f"could not parse {uri!r} as {fmt}: {exc}", field="dataset") from exc


def _load_file(path: str) -> tuple[pd.DataFrame, DatasetSource]:
    fmt = _format_for(path, path)
    p = Path(path)
    if not p.is_file():
        raise DataSourceError(f"file {path!r} does not exist", field="dataset")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DataSourceError(f"cannot read {path!r}: {exc.strerror}", field="dataset") from exc
    frame = _parse(data, fmt, path)
    digest = hashlib.sha256(data).hexdigest()
    return frame, DatasetSource(str(p.resolve()), "file", fmt, digest, len(data))


def s3_client() -> Any:
    """A boto3 S3 client. Credentials come only from the environment / instance role;
    ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` point it at MinIO or any S3-compatible
    store (boto3 reads both itself; they are passed explicitly so older configs behave)."""
    import boto3

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client("s3", endpoint_url=endpoint or None)


def split_s3_uri(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise DataSourceError(f"{uri!r} is not of the form s3://bucket/key", field="dataset")
    return bucket, key


def _load_s3(uri: str) -> tuple[pd.DataFrame, DatasetSource]:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3_uri(uri)
    fmt = _format_for(key, uri)
    try:
        body = s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        hint = {
            "NoSuchKey": "the object does not exist",
            "NoSuchBucket": "the bucket does not exist",
            "AccessDenied": "access denied (check the S3 credentials in the environment)",
            "InvalidAccessKeyId": "the access key is not valid",
            "SignatureDoesNotMatch": "the secret key does not match the access key",
        }.get(code, f"S3 error {code}")
        raise DataSourceError(f"cannot read {uri!r}: {hint}", field="dataset") from exc
    except BotoCoreError as exc:
        raise DataSourceError(f"cannot read {uri!r}: {exc}", field="dataset") from exc
    frame = _parse(body, fmt, uri)
    return frame, DatasetSource(uri, "s3", fmt, hashlib.sha256(body).hexdigest(), len(body))


def _load_builtin(name: str) -> tuple[pd.DataFrame, DatasetSource]:
    from sklearn import datasets

    bunch = getattr(datasets, BUILTIN_DATASETS[name])(as_frame=True)
    frame = bunch.frame.copy()
    frame[BUILTIN_LABEL_COLUMN] = frame[BUILTIN_LABEL_COLUMN].astype("int64")
    data = frame.to_csv(index=False).encode()
    return frame, DatasetSource(name, "builtin", "sklearn", hashlib.sha256(data).hexdigest(),
                                len(data))
