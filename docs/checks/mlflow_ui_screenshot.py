"""A documented check: what a user sees in the MLflow UI after a default run.

    apt-get install -y chromium          # Debian's; not a project dependency
    .venv/bin/python docs/checks/mlflow_ui_screenshot.py [--state-dir DIR] [--out docs/img]

Runs the default pipeline (`qubeflow run`) into a fresh local store, serves it with a real
`mlflow server`, and screenshots, with headless Chromium: the experiment's runs table, the
run's overview, and the registered model's page. Look at the PNGs: the classic (not GenAI)
experiment view, runs named `<model>-<kind>-<backend>-<time>`, the git commit as source, the
run's description, the datasets the metrics are linked to, the model's description and its
few version tags.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipelines.mlflow_server import LocalMlflowServer  # noqa: E402


def screenshot(browser: str, url: str, out: Path, size: str = "1400,900") -> None:
    subprocess.run(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={size}",
            "--virtual-time-budget=15000",  # the UI is a single-page app: let it render
            f"--screenshot={out}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    print(f"{out} ({out.stat().st_size // 1024} KB): {url}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", default="")
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("needs Chromium: apt-get install -y chromium", file=sys.stderr)
        return 2
    state = Path(args.state_dir or tempfile.mkdtemp(prefix="qubeflow-ui-"))
    qubeflow = Path(sys.executable).with_name("qubeflow")
    run = subprocess.run(
        [str(qubeflow), "run", "--json", "--state-dir", str(state)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with LocalMlflowServer(state) as server:
        base = server.uri
        exp, run_id = summary["experiment_id"], summary["run_id"]
        model = summary["model_name"]
        # MLflow 3.17's UI keeps the GenAI / "Model training" choice per browser; a fresh
        # one opens GenAI unless the link says otherwise (the links Qubeflow prints do).
        ml = "?workflowType=machine_learning"
        screenshot(browser, f"{base}/#/experiments/{exp}/runs{ml}", out / "mlflow-runs.png")
        screenshot(  # tall: the description and registered models are below the tags
            browser,
            f"{base}/#/experiments/{exp}/runs/{run_id}{ml}",
            out / "mlflow-run.png",
            size="1400,1500",
        )
        screenshot(
            browser,
            f"{base}/#/models/{model}/versions/{summary['model_version']}",
            out / "mlflow-model-version.png",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
