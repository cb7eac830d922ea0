"""The smaller bad inputs, as a user meets them: ``qubeflow run`` on the file exits 2 with one
clear line naming the field and what to do, and nothing reaches the registry."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.slow
ROWS = "".join(f"{i % 7}.5,{i % 3},{i % 2}\n" for i in range(60))

CASES = {
    "negative seed": (None, ["seed=-1"], "seed: must be >= 0, got -1"),
    # the built-in table's 426 train rows priced as an SVC grid (~0.6 s) against a 0.2 s limit
    "baseline over its limit": (
        None,
        ["exact_max_rows=100000", "classical_max_seconds=0.2"],
        "classical_max_seconds: classical baseline ~0.6 s (RBF SVC, 37 CV fits",
    ),
    "header only": (b"a,b,target\n", [], "dataset: the dataset has no rows"),
    "duplicated target": (
        ("a,target,target\n" + ROWS).encode(),
        [],
        "['target'] appear more than once in the header",
    ),
    "values near 1e308": (
        (
            "a,b,target\n" + "".join(f"{(-1) ** i}e308,{i % 3},{i % 2}\n" for i in range(60))
        ).encode(),
        [],
        "'a' hold values too large to standardise",
    ),
    "semicolons": (
        ("a;b;target\n" + ROWS.replace(",", ";")).encode(),
        [],
        "looks ';'-delimited",
    ),
    "gzip": (gzip.compress(("a,b,target\n" + ROWS).encode()), [], "is gzip-compressed"),
    "latin-1": (
        ("café,b,target\n" + ROWS).encode("latin-1"),
        [],
        "is not UTF-8 text",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_input_exits_2_with_one_clear_line(mlflow_server, tmp_path, case):
    content, extra, message = CASES[case]
    name = "cli-bad-" + case.replace(" ", "-").replace(".", "")
    args = ["--set", f"mlflow_tracking_uri={mlflow_server.uri}"]
    args += ["--set", f"registered_model_name={name}", "--set", "n_qubits=2"]
    if content is not None:
        path = tmp_path / "data.csv"
        path.write_bytes(content)
        args += ["--set", f"dataset={path}", "--set", "label_column=target"]
    for item in extra:
        args += ["--set", item]
    out = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--state-dir", str(tmp_path / "s"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert out.returncode == 2, out.stderr[-3000:]
    [line] = [x for x in out.stderr.splitlines() if x.startswith("qubeflow: error:")]
    assert message in line, line
    assert "Traceback" not in out.stderr
    assert MlflowClient(mlflow_server.uri).search_registered_models(f"name='{name}'") == []
    assert not list(Path(tmp_path / "s").glob("tmp/*"))  # the run's temp folder is gone
