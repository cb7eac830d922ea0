"""Data at scale: files load without whole-file copies and with a digest of their exact bytes;
what goes to KFP, bundles and MLflow (ROC curve, kernel heatmap, dataset inputs) stays bounded
whatever the number of rows. Nothing here is timed."""

from __future__ import annotations

import hashlib
import tempfile
import warnings

import boto3
import matplotlib.axes
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from components.data.sources import DatasetSource, _read_csv_arrow, load_table
from components.errors import DataSourceError
from components.registry.publish import DATASET_SCHEMA_SAMPLE_ROWS, _dataset_input
from components.training.metrics import ROC_MAX_POINTS, evaluate_classifier
from components.training.plots import HEATMAP_MAX_SIDE, kernel_heatmap_png


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    """Floats with gaps and infinities, an int column, a text column and a string label."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, 4)), columns=[f"f{i}" for i in range(4)])
    df["count"] = rng.integers(0, 1000, n)
    df["city"] = rng.choice(["Paris", "Lyon", "Nice"], n)
    df.loc[::97, "f1"] = np.nan
    df.loc[5, "f2"], df.loc[6, "f2"] = np.inf, -np.inf
    df["label"] = np.where(rng.random(n) > 0.5, "yes", "no")
    return df


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- loading ----------------------------------------------------------------------


def test_csv_over_many_arrow_blocks_loads_as_the_c_parser_reads_it(tmp_path):
    path = tmp_path / "big.csv"
    _table(40_000).to_csv(path, index=False)
    assert path.stat().st_size > 3 << 20  # several of Arrow's 1 MiB blocks
    frame, src = load_table(str(path))
    assert _read_csv_arrow(path) is not None  # the Arrow reader took it, no fallback
    pd.testing.assert_frame_equal(frame, pd.read_csv(path), check_exact=True)
    assert src.sha256 == _sha256(path) and src.n_bytes == path.stat().st_size
    assert src.kind == "file" and src.format == "csv"


def test_parquet_loads_column_by_column_with_the_file_digest(tmp_path):
    path = tmp_path / "big.parquet"
    df = _table(20_000)
    df.to_parquet(path, index=False)
    frame, src = load_table(str(path))
    pd.testing.assert_frame_equal(frame, pd.read_parquet(path), check_exact=True)
    pd.testing.assert_frame_equal(frame, df, check_exact=True)
    assert src.sha256 == _sha256(path) and src.n_bytes == path.stat().st_size
    assert src.format == "parquet"


def test_parquet_with_a_stored_index_reads_as_pandas_does(tmp_path):
    path = tmp_path / "indexed.parquet"
    df = _table(500).set_index("count")
    df.to_parquet(path)
    pd.testing.assert_frame_equal(load_table(str(path))[0], pd.read_parquet(path))


@pytest.mark.parametrize(
    "text",
    [
        "a,b\n" + "".join(f"{i},{i % 2}\n" for i in range(300_000)) + "0.5,1\nnot a number,0\n",
        ",a,y\n0,1.5,1\n1,2.5,0\n",  # an unnamed (index) column: the C parser names it
        "d,y\n2024-01-01,1\n2024-01-02,0\n",  # Arrow would read dates; the C parser keeps text
    ],
)
def test_csv_arrow_declines_is_read_by_the_c_parser(tmp_path, text):
    path = tmp_path / "odd.csv"
    path.write_text(text)
    assert _read_csv_arrow(path) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)  # the mixed-type column
        frame, src = load_table(str(path))
        pd.testing.assert_frame_equal(frame, pd.read_csv(path))
    assert src.sha256 == _sha256(path)


@pytest.mark.parametrize(
    "name,content,expected",
    [
        ("ragged.csv", b"a,b\n1,2\n3,4,5\n", r"Expected 2 fields in line 3, saw 3"),
        ("empty.csv", b"", "No columns to parse"),
        ("broken.parquet", b"PAR1 this is not parquet", "could not parse .* as parquet"),
    ],
)
def test_unparseable_file_is_an_error_naming_the_file(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataSourceError, match=expected) as e:
        load_table(str(path))
    assert f"could not parse {str(path)!r}" in str(e.value) and e.value.field == "dataset"


@pytest.fixture
def tmp_dir(tmp_path, monkeypatch):
    """Where the S3 loader's temporary copy goes (checked empty afterwards)."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def test_s3_object_streams_to_a_temporary_file_that_is_removed(s3_bucket, s3_env, tmp_dir):
    body = _table(20_000).to_csv(index=False).encode()
    boto3.client("s3", endpoint_url=s3_env).put_object(
        Bucket=s3_bucket, Key="raw/big.csv", Body=body
    )
    frame, src = load_table(f"s3://{s3_bucket}/raw/big.csv")
    assert src.sha256 == hashlib.sha256(body).hexdigest() and src.n_bytes == len(body)
    assert src.kind == "s3" and frame.shape == (20_000, 7)
    assert list(tmp_dir.iterdir()) == []


@pytest.mark.parametrize(
    "key,body,expected",
    [
        ("missing.csv", None, "the object does not exist"),
        ("bad.parquet", b"not parquet at all", "could not parse"),
    ],
)
def test_failed_s3_load_leaves_no_temporary_file(s3_bucket, s3_env, tmp_dir, key, body, expected):
    if body is not None:
        boto3.client("s3", endpoint_url=s3_env).put_object(Bucket=s3_bucket, Key=key, Body=body)
    with pytest.raises(DataSourceError, match=expected):
        load_table(f"s3://{s3_bucket}/{key}")
    assert list(tmp_dir.iterdir()) == []


# ---- bounded outputs --------------------------------------------------------------


class _ScoreModel:
    """A binary 'model' whose decision function is the first feature."""

    classes_ = np.array([0, 1])

    def decision_function(self, x):
        return np.asarray(x)[:, 0]

    def predict(self, x):
        return (self.decision_function(x) > 0).astype(int)


def test_roc_curve_is_downsampled_and_auc_uses_every_row():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60_000)
    x = (y * 0.8 + rng.normal(size=y.size))[:, None]
    assert len(roc_curve(y, x[:, 0])[0]) > 10 * ROC_MAX_POINTS  # the full curve is large
    ev = evaluate_classifier(_ScoreModel(), x, y)
    fpr, tpr, thr = map(np.asarray, (ev.roc_fpr, ev.roc_tpr, ev.roc_thresholds))
    assert len(fpr) == len(tpr) == len(thr) <= ROC_MAX_POINTS
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all() and (np.diff(thr) <= 0).all()
    assert ev.metrics["roc_auc"] == roc_auc_score(y, x[:, 0])
    assert np.trapezoid(tpr, fpr) == pytest.approx(ev.metrics["roc_auc"], abs=1e-3)


def test_small_roc_curve_is_kept_whole():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    x = (y + rng.normal(size=y.size))[:, None]
    fpr, tpr, _ = roc_curve(y, x[:, 0])
    ev = evaluate_classifier(_ScoreModel(), x, y)
    assert ev.roc_fpr == fpr.tolist() and ev.roc_tpr == tpr.tolist()


def test_kernel_heatmap_of_a_large_gram_draws_a_bounded_seeded_sample(tmp_path, monkeypatch):
    n = 2000
    gram = np.repeat(np.arange(n)[:, None] / n, n, axis=1)  # each entry tells its row
    labels = np.random.default_rng(0).integers(0, 2, n)
    drawn = []
    imshow = matplotlib.axes.Axes.imshow

    def recording_imshow(ax, data, **kw):
        drawn.append(np.asarray(data))
        return imshow(ax, data, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "imshow", recording_imshow)
    for name in ("a.png", "b.png"):
        path = kernel_heatmap_png(gram, labels, tmp_path / name)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn[0].shape == (HEATMAP_MAX_SIDE, HEATMAP_MAX_SIDE)
    np.testing.assert_array_equal(drawn[0], drawn[1])  # seeded: the same sample every time
    rows = np.rint(drawn[0][:, 0] * n).astype(int)
    assert len(set(rows)) == HEATMAP_MAX_SIDE
    assert (np.diff(labels[rows]) >= 0).all()  # sorted by class ...
    for cls in (0, 1):  # ... then by row
        assert (np.diff(rows[labels[rows] == cls]) > 0).all()
    assert {0, 1} == set(labels[rows])


def _split_frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.normal(size=(n, 20)), columns=[f"f{i}" for i in range(20)])
    df["target"] = rng.integers(0, 2, n)
    return df


def test_dataset_input_of_a_large_split_keeps_a_full_data_digest(sqlite_tracking_uri):
    import mlflow

    frame = _split_frame(200_000)
    src = DatasetSource("/data/big.csv", "file", "csv", "ab" * 32, 123)
    ds = _dataset_input(frame, src, "target", "train")
    assert ds.name == "big-train" and 8 <= len(ds.digest) <= 36  # MLflow's digest column
    changed = frame.copy()
    changed.loc[150_000, "f7"] += 1.0  # far past any head-of-table sample
    assert _dataset_input(changed, src, "target", "train").digest != ds.digest
    other_file = DatasetSource(src.uri, "file", "csv", "cd" * 32, 123)
    assert _dataset_input(frame, other_file, "target", "train").digest != ds.digest
    assert _dataset_input(frame, src, "target", "test").digest != ds.digest
    assert _dataset_input(frame, src, "target", "train").digest == ds.digest
    assert ds.profile == {"num_rows": 200_000, "num_elements": 200_000 * 21}

    mlflow.set_tracking_uri(sqlite_tracking_uri)
    mlflow.set_experiment("data-scale")  # not whatever experiment an earlier test left active
    with mlflow.start_run() as run:
        mlflow.log_input(ds, context="training")
    logged = mlflow.MlflowClient(sqlite_tracking_uri).get_run(run.info.run_id)
    dataset = logged.inputs.dataset_inputs[0].dataset
    assert dataset.digest == ds.digest and dataset.name == "big-train"


def test_dataset_schema_marks_columns_missing_past_the_sample():
    frame = _split_frame(5 * DATASET_SCHEMA_SAMPLE_ROWS)
    frame.loc[4 * DATASET_SCHEMA_SAMPLE_ROWS, "f3"] = np.nan
    src = DatasetSource("sklearn:demo", "builtin", "sklearn", "ef" * 32, 1)
    schema = _dataset_input(frame, src, "target", "train").schema
    required = {spec.name: spec.required for spec in schema.inputs}
    assert list(required) == list(frame.columns)
    assert required["f3"] is False and required["f4"] is True
