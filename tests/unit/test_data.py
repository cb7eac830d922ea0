"""Data sources, schema validation and preprocessing, called directly (the S3 source
against a real endpoint is in tests/integration/test_data_s3.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from components.data.preprocessing import fit_preprocessor, stratified_split
from components.data.sources import load_table
from components.data.validation import DataRequirements, validate_table
from components.errors import ConfigError, DataSourceError, DataValidationError
from components.steps.prepare_data.step import prepare
from tests.step_options import prepare_options
from tests.support import numeric_frame

# ---- sources ----------------------------------------------------------------------


def test_builtin_dataset_is_the_real_wisconsin_data():
    frame, src = load_table("sklearn:breast_cancer")
    assert frame.shape == (569, 31)
    assert src.kind == "builtin" and len(src.sha256) == 64
    assert sorted(frame["target"].unique()) == [0, 1]


def test_unknown_builtin_names_the_value_and_lists_choices():
    with pytest.raises(DataSourceError, match=r"sklearn:nope.*available.*breast_cancer") as e:
        load_table("sklearn:nope")
    assert e.value.field == "dataset"


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_local_file_round_trip(tmp_path, suffix):
    df = numeric_frame()
    path = tmp_path / f"data.{suffix}"
    df.to_csv(path, index=False) if suffix == "csv" else df.to_parquet(path, index=False)
    frame, src = load_table(str(path))
    pd.testing.assert_frame_equal(frame, df, check_dtype=False)
    assert src.kind == "file" and src.format == suffix
    assert load_table(f"file://{path}")[1].sha256 == src.sha256


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DataSourceError, match="does not exist"):
        load_table(str(tmp_path / "absent.csv"))
    with pytest.raises(DataSourceError, match="cannot tell the format"):
        load_table(str(tmp_path / "data.xlsx"))
    with pytest.raises(DataSourceError, match="unsupported scheme 'gs'"):
        load_table("gs://bucket/data.csv")


def _write(path, text: str | bytes):
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("semi.csv", "a;b;label\n1;2;0\n3;4;1\n", "looks ';'-delimited"),
        ("tabs.csv", "a\tb\tlabel\n1\t2\t0\n", "-delimited, and CSV here is comma-separated"),
        ("latin.csv", "caf\xe9,label\n1,0\n".encode("latin-1"), "is not UTF-8 text"),
        ("dup.csv", "a,label,label\n1,0,0\n2,1,1\n", r"\['label'\] appear more than once"),
    ],
)
def test_csv_files_the_parser_would_misread_are_refused_with_a_hint(
    tmp_path, name, content, message
):
    with pytest.raises(DataSourceError, match=message) as e:
        load_table(_write(tmp_path / name, content))
    assert e.value.field == "dataset"


def test_a_gzip_compressed_csv_is_named_as_such(tmp_path):
    import gzip

    path = tmp_path / "data.csv"
    path.write_bytes(gzip.compress(b"a,label\n1,0\n"))
    with pytest.raises(DataSourceError, match="gzip-compressed: decompress it"):
        load_table(str(path))


# ---- validation -------------------------------------------------------------------


def _req(**kw) -> DataRequirements:
    return DataRequirements(
        **{
            "label_column": "label",
            "n_qubits": 2,
            "test_size": 0.25,
            "min_samples_per_class": 10,
            "impute": "none",
            **kw,
        }
    )


def test_valid_table_profile():
    profile = validate_table(numeric_frame(), _req())
    assert profile.n_rows == 60 and profile.n_features == 5
    assert profile.class_counts == {"0": 30, "1": 30}
    assert "| f0 |" in profile.to_markdown()


@pytest.mark.parametrize(
    "mutate,field,message",
    [
        (
            lambda d: d.drop(columns=["label"]),
            "label_column",
            "column 'label' is not in the dataset",
        ),
        (lambda d: d.assign(label=1), "label_column", "single class"),
        (
            lambda d: d.assign(f1=d["f1"].where(d.index % 7 != 0)),
            "dataset",
            r"missing values in \{'f1': 9\}",
        ),
        (
            lambda d: d.assign(f2=np.where(d.index == 3, np.inf, d["f2"])),
            "dataset",
            "infinite values",
        ),
        (lambda d: d.assign(city="Paris"), "dataset", "non-numeric feature columns 'city'"),
        (lambda d: d.head(8), "min_samples_per_class", "fewer than 10 rows"),
        (
            lambda d: d.assign(label=np.r_[np.zeros(57), np.ones(3)].astype(int)),
            "min_samples_per_class",
            r"\{'1': 3\}",
        ),
        (lambda d: d[["label"]], "dataset", "no feature columns"),
        (lambda d: d.head(0), "dataset", "no rows"),
        (
            lambda d: d.assign(f3=np.where(d.index % 2, 1e308, -1e308)),
            "dataset",
            "'f3' hold values too large to standardise",
        ),
        (
            lambda d: pd.concat([d, d[["label"]]], axis=1),
            "label_column",
            "'label' appear more than once",
        ),
    ],
)
def test_bad_tables_name_the_problem(mutate, field, message):
    with pytest.raises(DataValidationError, match=message) as e:
        validate_table(mutate(numeric_frame()), _req())
    assert e.value.field == field


def test_too_few_rows_for_the_split():
    with pytest.raises(DataValidationError, match="too few for test_size"):
        validate_table(numeric_frame(n=8), _req(min_samples_per_class=2, test_size=0.1))


def test_more_qubits_than_features():
    with pytest.raises(DataValidationError, match="6 qubits need at least 6 features") as e:
        validate_table(numeric_frame(), _req(n_qubits=6))
    assert e.value.field == "n_qubits"


def test_imputation_allows_missing_values():
    df = numeric_frame()
    df.loc[::7, "f1"] = np.nan
    profile = validate_table(df, _req(impute="median"))
    assert profile.missing_values == {"f1": 9}


# ---- preprocessing ----------------------------------------------------------------


def test_split_is_stratified_and_seeded(breast_cancer):
    a = stratified_split(breast_cancer, "target", 0.25, 3)
    b = stratified_split(breast_cancer, "target", 0.25, 3)
    pd.testing.assert_frame_equal(a.train, b.train)
    ratio = breast_cancer["target"].mean()
    assert abs(a.test["target"].mean() - ratio) < 0.01


def test_preprocessor_fits_on_train_only_and_lands_in_angle_range(breast_cancer):
    split = stratified_split(breast_cancer, "target", 0.25, 3)
    hi = math.pi * 0.5
    pre = fit_preprocessor(split, 4, (0.0, hi), seed=3)
    x_train, _ = split.xy("train")
    np.testing.assert_allclose(pre.named_steps["scale"].mean_, x_train.mean().to_numpy())
    assert pre.named_steps["reduce"].n_components_ == 4
    test_angles = pre.transform(split.xy("test")[0])
    assert test_angles.shape[1] == 4
    assert test_angles.min() >= 0.0 and test_angles.max() <= hi  # clipped at inference too
    assert list(pre.feature_names_in_) == split.feature_columns


def test_prepare_validates_feature_map_before_reading(tmp_path):
    with pytest.raises(ConfigError, match="bandwidth"):
        prepare(prepare_options(dataset=str(tmp_path / "absent.csv"), bandwidth=0.0))
    with pytest.raises(ConfigError, match="unknown entanglement 'ring'"):
        prepare(prepare_options(dataset="sklearn:breast_cancer", entanglement="ring"))


def test_prepare_with_imputation(tmp_path):
    df = numeric_frame(n=80)
    df.loc[::5, "f0"] = np.nan
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    data = prepare(
        prepare_options(
            dataset=str(path),
            label_column="label",
            n_qubits=3,
            impute="mean",
            min_samples_per_class=5,
        )
    )
    assert "impute" in dict(data.preprocessor.steps)
    assert np.isfinite(data.preprocessor.transform(data.split.xy("test")[0])).all()
