"""Where a tabular dataset comes from: a local CSV/Parquet file, an ``s3://`` object, or a
built-in dataset that ships with scikit-learn (no network needed).

``load_table`` returns the table and a :class:`DatasetSource` that records what was read
(URI, kind, format and a SHA-256 of the exact bytes) for lineage.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: checking a reference does not need pandas
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
        raise DataSourceError(
            f"is empty; give a file path, an s3:// URI or one of {sorted(BUILTIN_DATASETS)}",
            field="dataset",
        )
    uri = uri.strip()
    if uri.startswith("sklearn:") and uri not in BUILTIN_DATASETS:
        raise DataSourceError(
            f"unknown built-in dataset {uri!r}; available: {sorted(BUILTIN_DATASETS)}",
            field="dataset",
        )
    if "://" in uri and not uri.startswith(("file://", "s3://")):
        scheme = uri.split("://", 1)[0]
        raise DataSourceError(
            f"unsupported scheme {scheme!r} in {uri!r}; use a local path, "
            "file://, s3:// or a built-in name",
            field="dataset",
        )
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
        raise DataSourceError(
            f"cannot tell the format of {uri!r}: expected one of {sorted(_FORMATS)}",
            field="dataset",
        )
    return _FORMATS[suffix]


#: Bytes read at a time when hashing or copying a file (never the whole file at once).
_CHUNK_BYTES = 1 << 20


def _sha256_file(path: Path) -> tuple[str, int]:
    """SHA-256 and size of the file at ``path``, read in chunks."""
    digest, n_bytes = hashlib.sha256(), 0
    buffer = bytearray(_CHUNK_BYTES)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
            n_bytes += n
    return digest.hexdigest(), n_bytes


def _parse(path: Path, fmt: str, uri: str) -> pd.DataFrame:
    """Parse the file at ``path`` (named ``uri`` in errors) without reading it into memory first."""
    import pandas as pd

    if fmt == "csv":
        _check_csv_header(path, uri)
    try:
        if fmt == "csv":
            frame = _read_csv_arrow(path)
            # pandas' C parser reads whatever the Arrow reader declined, and its errors are
            # the ones reported (as before this reader existed)
            frame = frame if frame is not None else pd.read_csv(path)
        else:
            return _read_parquet(path)
    except UnicodeDecodeError as exc:
        raise DataSourceError(
            f"{uri!r} is not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at offset "
            f"{exc.start}; latin-1 or cp1252?): re-save it as UTF-8 (or as Parquet)",
            field="dataset",
        ) from exc
    except Exception as exc:  # pandas/pyarrow raise many types for malformed files
        raise DataSourceError(f"could not parse {uri!r} as {fmt}: {exc}", field="dataset") from exc
    if frame.shape[1] == 1 and (
        sep := next((d for d in ";\t|" if d in str(frame.columns[0])), None)
    ):
        raise DataSourceError(
            f"{uri!r} has one column named {str(frame.columns[0])[:80]!r}: it looks "
            f"{sep!r}-delimited, and CSV here is comma-separated; convert it (or write Parquet)",
            field="dataset",
        )
    return frame


#: The first bytes of a gzip stream.
GZIP_MAGIC = b"\x1f\x8b"


def _check_csv_header(path: Path, uri: str) -> None:
    """A compressed file, or a header naming a column twice (which the parsers would rename
    ``name.1`` silently), is refused before parsing."""
    import csv

    with open(path, "rb") as f:
        head = f.read(2)
    if head == GZIP_MAGIC:
        raise DataSourceError(
            f"{uri!r} is gzip-compressed: decompress it first (gunzip), or write Parquet",
            field="dataset",
        )
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        header = next(csv.reader(f), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataSourceError(
            f"{uri!r}: column name(s) {repeated[:8]} appear more than once in the header; "
            "each column needs its own name",
            field="dataset",
        )


def _read_csv_arrow(path: Path) -> pd.DataFrame | None:
    """The CSV as pandas' C parser would read it, parsed by Arrow's streaming reader with about
    one copy of the data in memory; None when Arrow cannot parse it or its result could differ
    from the C parser's (then the caller uses the C parser).

    Arrow parses block by block (types fixed by the first block); each block's numeric columns
    are then copied into one preallocated array per column and the block is freed, so the peak
    is the parsed blocks plus the filling arrays (pages are committed as they are written) rather
    than the blocks plus a concatenated table plus the frame. Integers with missing values become
    float64 and all-empty columns float64 NaN, as the C parser does; text columns become pandas
    strings, as with the C parser. Unnamed or duplicated header names, booleans with missing values, dates and
    other inferred types are left to the C parser, which keeps them as it always did.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from pandas._libs.parsers import STR_NA_VALUES  # pandas' default na_values

    convert = pacsv.ConvertOptions(null_values=sorted(STR_NA_VALUES), strings_can_be_null=True)
    try:
        with pacsv.open_csv(path, convert_options=convert) as reader:
            schema = reader.schema
            batches = list(reader)
    except (pa.ArrowException, ValueError):
        return None
    names = schema.names
    n_rows = sum(b.num_rows for b in batches)
    if n_rows == 0 or "" in names or len(set(names)) != len(names):
        return None
    numeric: dict[int, np.ndarray] = {}
    text: list[int] = []
    for i, fld in enumerate(schema):
        nulls = sum(b.column(i).null_count for b in batches)
        kind = fld.type
        if pa.types.is_integer(kind):
            dtype = np.dtype(kind.to_pandas_dtype()) if nulls == 0 else np.dtype("float64")
        elif pa.types.is_floating(kind) or pa.types.is_null(kind):
            dtype = np.dtype("float64")
        elif pa.types.is_boolean(kind) and nulls == 0:
            dtype = np.dtype(bool)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            text.append(i)
            continue
        else:
            return None
        numeric[i] = np.empty(n_rows, dtype=dtype)
    columns: dict[int, Any] = {
        i: pa.chunked_array([b.column(i) for b in batches], schema.field(i).type).to_pandas()
        for i in text
    }
    pool = pa.default_memory_pool()
    batches.reverse()  # pop() from the end: the first block first, each freed once copied
    start = freed = 0
    while batches:
        batch = batches.pop()
        stop = start + batch.num_rows
        for i, out in numeric.items():
            out[start:stop] = (
                np.nan
                if pa.types.is_null(schema.field(i).type)
                else batch.column(i).to_numpy(zero_copy_only=False)
            )
        start = stop
        freed += batch.nbytes
        del batch
        if freed >= _CHUNK_BYTES * 16 or not batches:
            pool.release_unused()  # hand freed blocks back to the OS (the allocator keeps them)
            freed = 0
    columns.update(numeric)
    return pd.DataFrame({names[i]: columns[i] for i in range(len(names))}, copy=False)


def _read_parquet(path: Path) -> pd.DataFrame:
    """The Parquet file as ``pd.read_parquet`` reads it, one column at a time (Parquet is
    columnar: each read decodes only that column), so the peak is the frame plus one column
    rather than an Arrow table plus the frame. Files whose pandas metadata stores an index or
    multi-level column names are read in one go."""
    import pandas as pd
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    meta = schema.pandas_metadata or {}
    names = schema.names
    stored_index = any(not isinstance(c, dict) for c in meta.get("index_columns", []))
    if (
        stored_index
        or len(meta.get("column_indexes", [])) > 1
        or len(names) < 2
        or len(set(names)) != len(names)
    ):
        return pd.read_parquet(path)
    parts = [pd.read_parquet(path, columns=[name]) for name in names]
    return pd.concat(parts, axis=1)


def _load_file(path: str) -> tuple[pd.DataFrame, DatasetSource]:
    fmt = _format_for(path, path)
    p = Path(path)
    if not p.is_file():
        raise DataSourceError(f"file {path!r} does not exist", field="dataset")
    try:
        digest, n_bytes = _sha256_file(p)
    except OSError as exc:
        raise DataSourceError(f"cannot read {path!r}: {exc.strerror}", field="dataset") from exc
    frame = _parse(p, fmt, path)
    return frame, DatasetSource(str(p.resolve()), "file", fmt, digest, n_bytes)


def s3_client() -> Any:
    """A boto3 S3 client. Credentials come only from the environment / instance role;
    ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` point it at MinIO or any S3-compatible
    store (boto3 reads both itself; they are passed explicitly so older configs behave)."""
    import boto3

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client("s3", endpoint_url=endpoint or None)


def split_s3_uri(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise DataSourceError(f"{uri!r} is not of the form s3://bucket/key", field="dataset")
    return bucket, key


def _load_s3(uri: str) -> tuple[pd.DataFrame, DatasetSource]:
    """Stream the object to a temporary file while hashing it, parse that file, delete it."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3_uri(uri)
    fmt = _format_for(key, uri)
    tmp = None
    try:
        try:
            fd, tmp = tempfile.mkstemp(prefix="qubeflow-s3-", suffix=Path(key).suffix.lower())
            with os.fdopen(fd, "wb") as out:
                body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
                digest, n_bytes = hashlib.sha256(), 0
                for chunk in body.iter_chunks(_CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
                    n_bytes += len(chunk)
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
        except OSError as exc:
            raise DataSourceError(
                f"cannot read {uri!r}: writing its temporary copy failed: {exc.strerror}",
                field="dataset",
            ) from exc
        frame = _parse(Path(tmp), fmt, uri)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return frame, DatasetSource(uri, "s3", fmt, digest.hexdigest(), n_bytes)


def _load_builtin(name: str) -> tuple[pd.DataFrame, DatasetSource]:
    from sklearn import datasets

    bunch = getattr(datasets, BUILTIN_DATASETS[name])(as_frame=True)
    frame = bunch.frame.copy()
    frame[BUILTIN_LABEL_COLUMN] = frame[BUILTIN_LABEL_COLUMN].astype("int64")
    data = frame.to_csv(index=False).encode()
    return frame, DatasetSource(
        name, "builtin", "sklearn", hashlib.sha256(data).hexdigest(), len(data)
    )
