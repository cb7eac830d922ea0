"""The S3 data source against a real S3 endpoint on loopback (moto's server mode)."""

from __future__ import annotations

import boto3
import pytest

from components.data.sources import load_table
from components.errors import DataSourceError
from tests.support import numeric_frame


def test_s3_object_through_a_real_s3_endpoint(s3_bucket, s3_env):
    df = numeric_frame()
    boto3.client("s3", endpoint_url=s3_env).put_object(
        Bucket=s3_bucket, Key="raw/data.csv", Body=df.to_csv(index=False).encode()
    )
    frame, src = load_table(f"s3://{s3_bucket}/raw/data.csv")
    assert frame.shape == df.shape and src.kind == "s3"


@pytest.mark.parametrize(
    "uri,expected",
    [
        ("s3://{bucket}/missing.csv", "the object does not exist"),
        ("s3://no-such-bucket-qubeflow/data.csv", "the bucket does not exist"),
        ("s3://{bucket}", "not of the form s3://bucket/key"),
    ],
)
def test_unreadable_s3_object_is_a_clear_error(s3_bucket, uri, expected):
    with pytest.raises(DataSourceError, match=expected) as e:
        load_table(uri.format(bucket=s3_bucket))
    assert e.value.field == "dataset"


def test_s3_error_never_echoes_the_secret_key(s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "super-secret-value-123")
    with pytest.raises(DataSourceError) as e:
        load_table(f"s3://{s3_bucket}/missing.csv")
    assert "super-secret-value-123" not in str(e.value)
