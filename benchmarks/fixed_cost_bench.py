"""The fixed cost of a default run: where `qubeflow run`'s seconds go, side by side with a plain
script doing the same work, and (optionally) with an earlier revision of this repository.

    python benchmarks/fixed_cost_bench.py [--runs 3] [--before-rev GIT_REV]

For each run (default settings: built-in breast-cancer data, 8 qubits, statevector, a local
`mlflow server` started by the run) it prints the per-task breakdown parsed from the run's own
log: process start to the task's first line of its own work ("start-up": interpreter, KFP
executor, imports), then the work (including artifact I/O and, for the registry step, the
MLflow calls), and what happens before the first task (compile, server start) and after the
last. The plain script (`plain`) does the same work in one process: load the data, the same
preprocessing, the same CV grids for both models, log to a real `mlflow server` started the
same way, register the model and set the alias. Targets (PASS/FAIL): default run <= 15 s,
within 1.5x of the plain script, every task's start-up <= 1 s. Timings, not tests.

With ``--tests`` (and ``--before-rev``) it also runs the pipeline-running tests both
revisions have (``tests/e2e``), one revision after the other, each as its ``make test`` runs
them (serially, or on pytest-xdist workers where its Makefile says so), and compares wall
times: target, down by at least the default run's proportion.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_RUN_S, TARGET_RATIO, TARGET_STARTUP_S = 15.0, 1.5, 1.0
LABEL_WIDTH = 50
EXEC = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) - INFO - Executing task '([^']+)'")
DONE = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) - INFO - Task '([^']+)' finished")
#: The step's first own line (``components.runtime.task`` logs it after the step's imports).
OWN = re.compile(r"\[KFP Executor (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) INFO\]: [\w-]+: started")

PLAIN = r"""
import sys, time, json
t0 = time.perf_counter()
import mlflow, mlflow.sklearn, numpy as np
from mlflow import MlflowClient
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from components.data.sources import load_table
from components.data.preprocessing import fit_preprocessor, stratified_split
from components.quantum.transformers import QuantumKernelTransformer
from pipelines.mlflow_server import LocalMlflowServer
state = sys.argv[1]
with LocalMlflowServer(state) as server:
    frame, _ = load_table("sklearn:breast_cancer")
    split = stratified_split(frame, "target", 0.25, 42)
    pre = fit_preprocessor(split, 8, (0.0, 0.1 * np.pi), "none", 42)
    (x, y), (xt, yt) = split.xy("train"), split.xy("test")
    cv = StratifiedKFold(3, shuffle=True, random_state=42)
    a = pre.transform(x)
    classical = GridSearchCV(SVC(), {"C": [0.1, 1, 10, 100], "gamma": ["scale", 0.1, 1.0]},
                             cv=cv, scoring="balanced_accuracy").fit(a, y)
    kernel = QuantumKernelTransformer(feature_map="zz", reps=2)
    gram = kernel.fit_transform(a)
    quantum = GridSearchCV(SVC(kernel="precomputed"), {"C": [0.1, 1, 10, 100]}, cv=cv,
                           scoring="balanced_accuracy").fit(gram, y)
    model = Pipeline([("preprocess", pre), ("classifier", classical.best_estimator_)])
    mlflow.set_tracking_uri(server.uri)
    mlflow.set_experiment("plain")
    with mlflow.start_run():
        mlflow.log_params(classical.best_params_)
        mlflow.log_metric("classical.score", classical.score(pre.transform(xt), yt))
        mlflow.log_metric("quantum.score", quantum.score(kernel.transform(pre.transform(xt)), yt))
        info = mlflow.sklearn.log_model(model, name="model", input_example=xt.head(5),
                                        serialization_format="skops")
    client = MlflowClient(server.uri)
    client.create_registered_model("plain")
    mv = client.create_model_version("plain", info.model_uri, model_id=info.model_id)
    client.set_registered_model_alias("plain", "champion", mv.version)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


#: Without that line (older revisions): the first line that is not the KFP executor's own.
FIRST = re.compile(
    r"\[KFP Executor (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) INFO\]: (?!Looking for|Loading KFP|Got executor|Wrote executor)"
)


def _t(stamp: str) -> float:
    return datetime.strptime(stamp, "%H:%M:%S.%f").timestamp() % 86400


def _own(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp() % 86400


def breakdown(log_text: str) -> list[dict]:
    """Per task: start-up (executing -> first own log line), work, total (seconds)."""
    tasks, current = [], None
    for line in log_text.splitlines():
        if m := EXEC.match(line):
            current = {"task": m.group(2), "start": _t(m.group(1)), "own": None}
        elif current and current["own"] is None and (m := OWN.search(line)):
            current["own"] = _own(m.group(1))
        elif current and current.get("first") is None and (m := FIRST.search(line)):
            current["first"] = _own(m.group(1))
        elif current and (m := DONE.match(line)) and m.group(2) == current["task"]:
            end = _t(m.group(1))
            own = current["own"] or current.get("first") or end
            tasks.append(
                {
                    "task": current["task"],
                    "startup": own - current["start"],
                    "work": end - own,
                    "total": end - current["start"],
                    "start": current["start"],
                    "end": end,
                }
            )
            current = None
    return tasks


def run_qubeflow(pythonpath: Path, state: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    state.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--json"],
        cwd=state,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"qubeflow run failed:\n{proc.stderr[-3000:]}")
    logs = sorted((state / ".qubeflow" / "logs").glob("run-*.log"))
    tasks = breakdown(logs[-1].read_text())
    first = min(t["start"] for t in tasks)
    last = max(t["end"] for t in tasks)
    return {
        "wall": wall,
        "tasks": tasks,
        "before_first": first - (t0 % 86400),
        "after_last": (t0 % 86400) + wall - last,
    }


DURATION = re.compile(r"^([\d.]+)s (?:setup|call|teardown)\s+(\S+)")


def _pytest(tree: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)


def e2e_ids(tree: Path) -> set[str]:
    """The node ids of ``tree``'s tests/e2e."""
    out = _pytest(tree, "tests/e2e", "--collect-only")
    return {line for line in out.stdout.splitlines() if line.startswith("tests/e2e/")}


def run_tests(tree: Path, ids: list[str], xdist: list[str]) -> dict:
    """Wall seconds of ``ids`` as ``make test`` of that revision runs them (``xdist``: its
    worker options, empty when it ran serially), and pytest's own per-test durations (setup +
    call + teardown; under workers these include waiting for the other worker's CPU)."""
    t0 = time.time()
    out = _pytest(tree, *xdist, "--durations=0", "--durations-min=0", *ids)
    wall = time.time() - t0
    if out.returncode != 0:
        raise SystemExit(f"tests/e2e failed in {tree}:\n{out.stdout[-3000:]}")
    seconds: dict[str, float] = {}
    for line in out.stdout.splitlines():
        if m := DURATION.match(line.strip()):
            seconds[m.group(2)] = seconds.get(m.group(2), 0.0) + float(m.group(1))
    return {"wall": wall, "per_test": sum(seconds.values()), "n": len(ids)}


def make_test_xdist(tree: Path) -> list[str]:
    """The pytest-xdist options ``tree``'s ``make test-fast`` passes on this machine, read from
    its dry run (none for a revision whose Makefile ran the tests in one process)."""
    out = subprocess.run(
        ["make", "-s", "-n", "test-fast"], cwd=tree, capture_output=True, text=True
    ).stdout
    found = re.search(r" (-n \d+ --dist \w+)", out)
    return found.group(1).split() if found else []


def run_plain(state: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    t0 = time.time()
    subprocess.run(
        [sys.executable, "-c", PLAIN, str(state)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return time.time() - t0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before-rev", help="also measure this git revision (a worktree)")
    parser.add_argument(
        "--tests",
        action="store_true",
        help="also time tests/e2e of both revisions (needs --before-rev; ~10 min)",
    )
    args = parser.parse_args()
    trees = {"now": ROOT}
    tmp = Path(tempfile.mkdtemp(prefix="qubeflow-fixed-cost-"))
    if args.before_rev:
        before = tmp / "before"
        subprocess.run(
            [
                "git",
                "-C",
                str(ROOT),
                "worktree",
                "add",
                "-q",
                "--detach",
                str(before),
                args.before_rev,
            ],
            check=True,
        )
        trees = {f"before ({args.before_rev})": before, **trees}
    try:
        results = {
            name: [run_qubeflow(tree, tmp / f"{i}-{k}") for k in range(args.runs)]
            for i, (name, tree) in enumerate(trees.items())
        }
        plain = [run_plain(tmp / f"plain-{k}") for k in range(args.runs)]
        tests = {}
        if args.tests and args.before_rev:
            common = sorted(set.intersection(*(e2e_ids(tree) for tree in trees.values())))
            tests = {
                name: run_tests(tree, common, make_test_xdist(tree)) for name, tree in trees.items()
            }
    finally:
        if args.before_rev:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "before")],
                check=False,
            )
    med = statistics.median
    print(f"\nDefault `qubeflow run`, medians of {args.runs} runs (seconds)\n")
    names = list(results)
    w = LABEL_WIDTH
    print(f"{'':<{w}}" + "".join(f"{n:>24}" for n in names))
    rows = ["before first task (compile, server)"]
    print(
        f"{rows[0]:<{w}}"
        + "".join(f"{med(r['before_first'] for r in results[n]):>24.1f}" for n in names)
    )
    all_tasks = list(
        dict.fromkeys(t["task"] for n in names for r in results[n] for t in r["tasks"])
    )
    for task in all_tasks:
        cells = []
        for n in names:
            got = [t for r in results[n] for t in r["tasks"] if t["task"] == task]
            cells.append(
                f"{med(t['startup'] for t in got):.2f} + {med(t['work'] for t in got):.2f}"
                if got
                else "-"
            )
        print(f"{task + ' (start-up + work)':<{w}}" + "".join(f"{c:>24}" for c in cells))
    print(
        f"{'after last task (server stop)':<{w}}"
        + "".join(f"{med(r['after_last'] for r in results[n]):>24.1f}" for n in names)
    )
    print(
        f"{'whole run (wall)':<{w}}"
        + "".join(f"{med(r['wall'] for r in results[n]):>24.1f}" for n in names)
    )
    print(f"{'plain script, same work':<{w}}{med(plain):>24.1f}")
    now = results["now"]
    wall = med(r["wall"] for r in now)
    worst_startup = max(t["startup"] for r in now for t in r["tasks"])
    ratio = wall / med(plain)
    print()
    for ok, text in (
        (wall <= TARGET_RUN_S, f"default run {wall:.1f} s <= {TARGET_RUN_S:g} s"),
        (ratio <= TARGET_RATIO, f"{ratio:.2f}x the plain script <= {TARGET_RATIO}x"),
        (
            worst_startup <= TARGET_STARTUP_S,
            f"slowest task start-up {worst_startup:.2f} s <= {TARGET_STARTUP_S:g} s",
        ),
    ):
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    if tests:
        (before_name, before), (_, now_t) = tests.items()
        run_cut = 1 - wall / med(r["wall"] for r in results[before_name])
        test_cut = 1 - now_t["wall"] / before["wall"]
        print(
            f"{'PASS' if test_cut >= run_cut else 'FAIL'}  tests/e2e as make test runs them, the "
            f"{now_t['n']} tests both revisions have: {before['wall']:.0f} s -> "
            f"{now_t['wall']:.0f} s wall (-{test_cut:.0%}; target at least the default run's "
            f"-{run_cut:.0%}); per-test durations summed {before['per_test']:.0f} s -> "
            f"{now_t['per_test']:.0f} s"
        )
    print(json.dumps({"now_wall": wall, "plain": med(plain)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
