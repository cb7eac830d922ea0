"""The whole pipeline as the data grows (issue 13's benchmark; ``make bench-scale``).

For each table size (seeded ``make_classification``, 20 features, label ``target``, written to
CSV) and each quantum method that applies, runs ``qubeflow run --json`` end to end as a user
would — its own local MLflow server (``MLFLOW_TRACKING_URI`` unset), a fresh ``--state-dir``
and working directory per run — under ``/usr/bin/time -v``, and prints:

- wall time, peak RSS of the largest single process (what a pod limit sees), test ROC AUC of
  the quantum model and the classical baseline (from the JSON), which method ran;
- per-step wall times (the local runner's ``Executing task`` / ``finished with status`` lines
  in the run log ``<state>/logs/run-*.log``; the MLflow server's start and stop from the
  CLI's own log) and each step's peak RSS;
- for Nyström at 20 000 rows the kernel approximation error (relative Frobenius on a
  2 000-row sample of the train angles against the exact kernel) and the AUC gap to exact;
- ``qubeflow estimate``'s predicted peak memory against the measured peak of the quantum
  step's process;
- the built-in dataset on shot-based backends (4 qubits): the method ``auto`` picks, the
  circuits it runs against the exact Gram's, and whether the estimate said so beforehand;

then PASS/FAIL against the issue's targets. Peak RSS: ``time -v`` reports ``ru_maxrss`` of the
waited-for process tree, which Linux defines as the largest *single* process's peak (not a
sum); the script also polls ``/proc`` (every process in the tree: ``VmHWM``, the kernel's own
per-process high-water mark, and the tree's summed ``VmRSS``) so each step's process is
measured on its own and the two are cross-checked.

Plain script, never run by the tests. Heavy: one measurement at a time, the 10⁶-row run takes
several minutes. Examples::

    python benchmarks/scale_bench.py --rows 1000,20000
    python benchmarks/scale_bench.py --rows 1000000 --skip-shots
    python benchmarks/scale_bench.py --rows '' --shots-only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MiB = 2**20
GiB = 2**30
SIZES = (1_000, 20_000, 100_000, 1_000_000)
#: quantum_method per size (None: the default, auto). Exact fidelity where it is feasible.
EXACT_MAX_BENCH_ROWS = 20_000
FEATURE_ROWS = (1_000, 20_000)  # nystroem and projected explicitly
N_QUBITS = 8
SHOT_BACKENDS = ("qiskit-aer?noise=FakeManilaV2", "ibm-local:FakeManilaV2")
SHOT_QUBITS = 4
#: The built-in dataset's exact Gram + test kernel: 426·425/2 + 143·426 circuits.
EXACT_BUILTIN_CIRCUITS = 151_443
APPROX_SAMPLE = 2_000

# Targets (issue 13)
T_20K_SECONDS, T_20K_BYTES = 60.0, 2 * GiB
T_1M_SECONDS, T_1M_BYTES = 600.0, 8 * GiB
T_AUC_GAP = 0.005
T_CIRCUIT_FACTOR = 10.0
T_MEMORY_REL = 0.25

STEPS = (
    "check-promotion-policy",
    "prepare-data",
    "train-classical-model",
    "plan-kernel-tiles",
    "compute-kernel-tile",
    "assemble-kernel",
    "train-quantum-model",
    "register-model",
)
SHORT = {
    "mlflow-start": "mlflow",
    "check-promotion-policy": "policy",
    "prepare-data": "prep",
    "train-classical-model": "classic",
    "plan-kernel-tiles": "plan",
    "compute-kernel-tile": "tiles",
    "assemble-kernel": "assemble",
    "train-quantum-model": "quantum",
    "register-model": "register",
    "mlflow-stop": "stop",
}


# ---------------------------------------------------------------- process-tree sampling
def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _status_kib(pid: int) -> tuple[int, int] | None:
    """(VmHWM, VmRSS) in KiB, None when gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    hwm = re.search(r"^VmHWM:\s+(\d+)", text, re.M)
    rss = re.search(r"^VmRSS:\s+(\d+)", text, re.M)
    if not hwm or not rss:
        return None
    return int(hwm.group(1)), int(rss.group(1))


def _label(cmdline: list[str]) -> str:
    if "--function_to_execute" in cmdline:
        i = cmdline.index("--function_to_execute")
        if i + 1 < len(cmdline):
            return cmdline[i + 1].replace("_", "-")
    text = " ".join(cmdline)
    if "mlflow" in text or "huey" in text or "uvicorn" in text:
        return "mlflow-server"
    if "pipelines.cli" in text:
        return "qubeflow-cli"
    if "/usr/bin/time" in text or (cmdline and cmdline[0].endswith("time")):
        return "time"
    return Path(cmdline[0]).name if cmdline else "?"


@dataclass
class ProcPeak:
    pid: int
    label: str
    hwm_bytes: int = 0


class TreeSampler:
    """Polls the process tree under ``root`` (``VmHWM`` per process, summed ``VmRSS``)."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root, self.interval = root, interval
        self.procs: dict[int, ProcPeak] = {}
        self.tree_peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        kids = _children_map()
        todo, total = [self.root], 0
        while todo:
            pid = todo.pop()
            todo.extend(kids.get(pid, []))
            status = _status_kib(pid)
            if status is None:
                continue
            hwm, rss = status
            total += rss
            peak = self.procs.get(pid)
            if peak is None or peak.label == "?":
                try:
                    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    raw = b""
                label = _label([a.decode(errors="replace") for a in raw.split(b"\0") if a])
                if peak is None:
                    peak = self.procs[pid] = ProcPeak(pid, label)
                peak.label = label
            peak.hwm_bytes = max(peak.hwm_bytes, hwm * 1024)
        self.tree_peak_bytes = max(self.tree_peak_bytes, total * 1024)

    def peak_by_label(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.procs.values():
            out[p.label] = max(out.get(p.label, 0), p.hwm_bytes)
        return out

    def largest(self) -> ProcPeak | None:
        return max(self.procs.values(), key=lambda p: p.hwm_bytes, default=None)


# ---------------------------------------------------------------- running a command
@dataclass
class Measured:
    argv: list[str]
    rc: int
    wall: float
    maxrss_bytes: int  # /usr/bin/time -v: largest single process of the waited-for tree
    stdout: str
    stderr: str
    proc_peaks: dict[str, int] = field(default_factory=dict)
    largest_label: str = ""
    largest_bytes: int = 0
    tree_peak_bytes: int = 0
    cpu_seconds: float = 0.0  # user + sys of the whole tree (time -v)
    load_before: float = 0.0  # 1-minute load average when the run started (shared machine)


#: Extra environment for every measured command (``--env KEY=VALUE``, e.g. thread limits).
EXTRA_ENV: dict[str, str] = {}


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(EXTRA_ENV)
    env.pop("MLFLOW_TRACKING_URI", None)
    parts = [str(REPO)] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != REPO
    ]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def measure(argv: list[str], cwd: Path, log_path: Path) -> Measured:
    """Run ``argv`` under ``/usr/bin/time -v`` in ``cwd`` while sampling its process tree."""
    cmd = ["/usr/bin/time", "-v", *argv]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with (
        open(log_path.with_suffix(".out"), "w+") as out,
        open(log_path.with_suffix(".err"), "w+") as err,
    ):
        proc = subprocess.Popen(cmd, cwd=cwd, env=clean_env(), stdout=out, stderr=err)
        with TreeSampler(proc.pid) as sampler:
            rc = proc.wait()
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    e = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", stderr)
    if e:
        secs = 0.0
        for part in e.group(1).split(":"):
            secs = secs * 60 + float(part)
        wall = secs
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", stderr))
    peaks = sampler.peak_by_label()
    peaks.pop("time", None)
    biggest = max(
        (p for p in sampler.procs.values() if p.label != "time"),
        key=lambda p: p.hwm_bytes,
        default=None,
    )
    return Measured(
        argv,
        rc,
        wall,
        int(m.group(1)) * 1024 if m else 0,
        stdout,
        stderr,
        peaks,
        biggest.label if biggest else "",
        biggest.hwm_bytes if biggest else 0,
        sampler.tree_peak_bytes,
        cpu,
        load,
    )


def last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


# ---------------------------------------------------------------- parsing a run
_TS = r"(\d\d):(\d\d):(\d\d)[.,](\d{3})"


def _secs(match: re.Match) -> float:
    h, m, s, ms = (int(g) for g in match.groups()[:4])
    return h * 3600 + m * 60 + s + ms / 1000


def step_times(run_log: str, cli_err: str) -> dict[str, float]:
    """Seconds per pipeline task (summed over repeats, e.g. kernel tiles) from the local
    runner's lines, plus the CLI's MLflow server start and stop."""
    out: dict[str, float] = {}
    started: dict[str, float] = {}
    last = 0.0
    day = 0.0
    for line in run_log.splitlines():
        ts = re.match(_TS, line)
        if not ts:
            continue
        t = _secs(ts) + day
        if t < last - 1:  # past midnight
            day += 86400
            t += 86400
        last = t
        if m := re.search(r"Executing task '([^']+)'", line):
            started[m.group(1)] = t
        elif m := re.search(r"Task '([^']+)' finished with status", line):
            name = m.group(1)
            if name in started:
                out[name] = out.get(name, 0.0) + t - started.pop(name)
    stamps = {}
    for key, pat in (
        ("start", r"starting mlflow server"),
        ("ready", r"mlflow server ready"),
        ("local", r"running the pipeline locally"),
        ("stopped", r"server on .* stopped"),
        ("done", r"Pipeline '.*' finished with status"),
    ):
        for line in cli_err.splitlines():
            if re.search(pat, line) and (ts := re.search(_TS, line)):
                stamps[key] = _secs(ts)
                break
    if "start" in stamps and "ready" in stamps:
        out["mlflow-start"] = (stamps["ready"] - stamps["start"]) % 86400
    if "done" in stamps and "stopped" in stamps:
        out["mlflow-stop"] = (stamps["stopped"] - stamps["done"]) % 86400
    return out


def library_times(run_log: str) -> dict[str, float]:
    """The training functions' own times (their last log line, ``..., 12.34 s``)."""
    out = {}
    for key, pat in (
        ("classical-fit", r"classical baseline \(\w+\): .*, ([\d.]+) s$"),
        ("quantum-fit", r"quantum (?:\w+ )?model: .*, ([\d.]+) s$"),
    ):
        for line in run_log.splitlines():
            if m := re.search(pat, line.rstrip()):
                out[key] = float(m.group(1))
    return out


def pipeline_dir(state: Path) -> Path | None:
    runs = sorted((state / "kfp_outputs").glob("qubeflow-retraining-*"))
    return runs[-1] if runs else None


@dataclass
class RunResult:
    label: str
    rows: int
    requested: str
    measured: Measured
    summary: dict[str, Any] | None
    steps: dict[str, float]
    lib: dict[str, float]
    state: Path
    ran: str = ""
    fallback: bool = False
    fallback_reason: str = ""
    auc_q: float | None = None
    auc_c: float | None = None
    quantum_peak: int = 0
    circuits_used: int | None = None
    method_plan: dict[str, Any] | None = None
    same_as: str = ""
    #: the pipeline parameters beyond the dataset (what the estimate is run with, too)
    sets: dict[str, Any] = field(default_factory=dict)
    #: ``qubeflow estimate --json`` with the same settings (sizes in ESTIMATE_ROWS)
    estimate: dict[str, Any] | None = None
    estimate_rc: int | None = None

    @property
    def ok(self) -> bool:
        return self.measured.rc == 0 and self.summary is not None


def run_pipeline(
    label: str, rows: int, dataset: str, sets: dict[str, Any], work: Path
) -> RunResult:
    cwd = work / label
    if cwd.exists():
        shutil.rmtree(cwd)
    cwd.mkdir(parents=True)
    state = cwd / "state"
    argv = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "run",
        "--json",
        "--state-dir",
        str(state),
        "--set",
        f"dataset={dataset}",
    ]
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    print(f"  running {label}: qubeflow run " + " ".join(argv[7:]), flush=True)
    m = measure(argv, cwd, cwd / "qubeflow")
    logs = sorted((state / "logs").glob("run-*.log"))
    run_log = logs[-1].read_text() if logs else ""
    summary = last_json(m.stdout) if m.rc == 0 else None
    r = RunResult(
        label,
        rows,
        variant_name(sets),
        m,
        summary,
        step_times(run_log, m.stderr),
        library_times(run_log),
        state,
        sets=dict(sets),
    )
    r.quantum_peak = m.proc_peaks.get("train-quantum-model", 0)
    if summary:
        tags = summary.get("quantum_tags") or {}
        r.ran = tags.get("quantum.method", "") or (
            "-" if not summary.get("quantum_enabled") else "?"
        )
        r.fallback = bool(summary.get("fallback"))
        r.fallback_reason = summary.get("fallback_reason") or ""
        if r.fallback and r.ran in ("", "?"):
            r.ran = "fallback"
        metrics = summary.get("metrics", {})
        r.auc_q = metrics.get("quantum", {}).get("roc_auc")
        r.auc_c = metrics.get("classical", {}).get("roc_auc")
    pdir = pipeline_dir(state)
    qdir = pdir / "train-quantum-model" / "model" if pdir else None
    if qdir and (qdir / "calibration.json").is_file():
        cal = json.loads((qdir / "calibration.json").read_text())
        jobs = (cal.get("execution") or {}).get("jobs") or []
        if jobs:
            r.circuits_used = sum(int(j.get("circuits") or 0) for j in jobs)
    if qdir and (qdir / "quantum_outcome.json").is_file():
        outcome = json.loads((qdir / "quantum_outcome.json").read_text())
        r.method_plan = outcome.get("method")
        if not r.ran and r.method_plan:
            r.ran = r.method_plan.get("method", "")
    status = "ok" if r.ok else f"FAILED rc={m.rc}"
    print(
        f"    {status}: {m.wall:.1f} s (cpu {m.cpu_seconds:.0f} s, load {m.load_before:.1f}), peak RSS {m.maxrss_bytes / MiB:,.0f} MiB "
        f"({m.largest_label}), method {r.ran}{' FALLBACK ' + r.fallback_reason if r.fallback else ''}"
        f", AUC q {fmt(r.auc_q, '.4f')} c {fmt(r.auc_c, '.4f')}",
        flush=True,
    )
    if not r.ok:
        print("    " + "\n    ".join(m.stderr.strip().splitlines()[-15:]), flush=True)
    return r


def run_estimate(
    label: str, dataset: str, sets: dict[str, Any], work: Path
) -> tuple[dict[str, Any] | None, Measured]:
    cwd = work / label
    cwd.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "estimate",
        "--json",
        "--set",
        f"dataset={dataset}",
    ]
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    m = measure(argv, cwd, cwd / "estimate")
    return last_json(m.stdout), m


# ---------------------------------------------------------------- data
def make_csv(rows: int, data_dir: Path) -> Path:
    path = data_dir / f"synthetic-{rows}.csv"
    if path.is_file():
        return path
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    t0 = time.perf_counter()
    x, y = make_classification(n_samples=rows, n_features=20, n_informative=10, random_state=0)
    frame = pd.DataFrame(x, columns=[f"x{i:02d}" for i in range(x.shape[1])])
    frame["target"] = y.astype(np.int64)
    tmp = path.with_suffix(".part")
    frame.to_csv(tmp, index=False)
    tmp.rename(path)
    del frame, x, y
    print(
        f"  data: {rows:,} rows -> {path} ({path.stat().st_size / MiB:,.0f} MiB, "
        f"{time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    return path


# ---------------------------------------------------------------- Nyström quality
def nystroem_quality(nys: RunResult, sample: int = APPROX_SAMPLE) -> dict[str, Any]:
    """Relative Frobenius error of the run's own fitted Nyström features against the exact
    fidelity kernel on a seeded sample of its train angles."""
    import joblib
    import numpy as np

    from components.data.prepared import load_prepared
    from components.quantum.backends import get_backend
    from components.quantum.nystroem import approximation_error

    pdir = pipeline_dir(nys.state)
    prep = pdir / "prepare-data"
    split, _, _ = load_prepared(
        str(prep / "train_data"),
        str(prep / "test_data"),
        str(prep / "preprocessor"),
        str(prep / "data_lineage"),
    )
    model = joblib.load(pdir / "train-quantum-model" / "model" / "model.joblib")
    features = model.named_steps["quantum_features"]
    x_train, _ = split.xy("train")
    angles = model.named_steps["preprocess"].transform(x_train)
    idx = np.sort(
        np.random.default_rng(0).choice(len(angles), size=min(sample, len(angles)), replace=False)
    )
    xs = angles[idx]
    fmap = features.feature_map_for(xs.shape[1])
    t0 = time.perf_counter()
    exact = get_backend("statevector").kernel(fmap, xs, None)
    phi = features.transform(xs)
    err = approximation_error(exact, phi)
    return {
        "error": err,
        "sample": len(xs),
        "landmarks": len(features.landmarks_),
        "rank": int(features.weights_.shape[1]),
        "kept_trace": float(features.kept_trace_),
        "seconds": time.perf_counter() - t0,
    }


# ---------------------------------------------------------------- the quantum step alone
def isolated_quantum_step(src: RunResult, sets: dict[str, Any], work: Path) -> Measured:
    """``run_quantum_step`` on ``src``'s prepared data, with the run's settings, in its own
    process under time -v (the quantum task's work without the KFP executor around it)."""
    pdir = pipeline_dir(src.state)
    prep = pdir / "prepare-data"
    out = work / f"isolated-{src.label}"
    out.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys\n"
        "from components.data.prepared import load_prepared\n"
        "from components.runtime import setup_logging\n"
        "from pipelines.config import PipelineConfig\n"
        "from components.steps.train_quantum.step import run_quantum_step\n"
        "setup_logging()\n"
        "p = sys.argv[1]\n"
        "split, pre, _ = load_prepared(p + '/train_data', p + '/test_data', "
        "p + '/preprocessor', p + '/data_lineage')\n"
        "cfg = PipelineConfig.load(None, sys.argv[3:])\n"
        "o = run_quantum_step(split, pre, sys.argv[2], cfg.quantum_options())\n"
        "print(o.status, o.reason, (o.method or {}).get('cost'))\n"
    )
    settings = [f"{k}={v}" for k, v in sets.items() if k != "label_column"]
    return measure(
        [sys.executable, "-c", code, str(prep), str(out / "model"), *settings], out, out / "step"
    )


# ---------------------------------------------------------------- output
def fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def mib(b: int | float | None) -> str:
    return "-" if not b else f"{b / MiB:,.0f}"


def print_runs(results: list[RunResult]) -> list[str]:
    lines = [
        "",
        "## Full runs (`qubeflow run`, one process tree each)",
        "",
        f"{'rows':>9} {'quantum_method':<34}{'ran':<11}{'wall s':>8}{'cpu s':>7}{'load':>6}"
        f"{'peak MiB':>10} "
        f"{'largest process':<22}{'q-step MiB':>11}{'tree MiB':>10}{'AUC q':>8}"
        f"{'AUC c':>8}  note",
    ]
    lines.append("-" * len(lines[-1]))
    for r in results:
        m = r.measured
        note = r.same_as and f"same run as {r.same_as}"
        if r.fallback:
            note = f"FALLBACK {r.fallback_reason}"[:60]
        if not r.ok:
            note = f"FAILED rc={m.rc}"
        lines.append(
            f"{r.rows:>9,} {r.requested[:33]:<34}{r.ran or '-':<11}{m.wall:>8.1f}"
            f"{m.cpu_seconds:>7.0f}{m.load_before:>6.1f}{mib(m.maxrss_bytes):>10} {m.largest_label[:21]:<22}"
            f"{mib(r.quantum_peak):>11}{mib(m.tree_peak_bytes):>10}"
            f"{fmt(r.auc_q, '.4f'):>8}{fmt(r.auc_c, '.4f'):>8}  {note}"
        )
    lines += [
        "",
        "## Wall time per step (s; from the run log) and each step's process peak RSS (MiB)",
        "",
    ]
    cols = ["mlflow-start", *STEPS, "mlflow-stop"]
    head = f"{'rows':>9} {'method':<11}" + "".join(f"{SHORT[c]:>9}" for c in cols)
    head += f"{'q-fit':>8}{'c-fit':>8}"
    lines += [head, "-" * len(head)]
    for r in results:
        if r.same_as:
            continue
        lines.append(
            f"{r.rows:>9,} {r.ran or r.requested:<11}"
            + "".join(f"{fmt(r.steps.get(c), '.1f'):>9}" for c in cols)
            + f"{fmt(r.lib.get('quantum-fit'), '.1f'):>8}"
            + f"{fmt(r.lib.get('classical-fit'), '.1f'):>8}"
        )
        lines.append(
            f"{'':>9} {'  peak MiB':<11}"
            + "".join(f"{mib(r.measured.proc_peaks.get(_proc(c))):>9}" for c in cols)
            + f"{'':>16}"
        )
    lines.append(
        "q-fit / c-fit: the training functions' own time inside the quantum / "
        "classical step (their last log line); mlflow: server start (stop) in the CLI"
    )
    return lines


def _proc(step: str) -> str:
    return "mlflow-server" if step.startswith("mlflow") else step


# ---------------------------------------------------------------- plan of runs
#: Sizes at which every run is also priced by ``qubeflow estimate`` (same settings).
ESTIMATE_ROWS = (20_000, 100_000, 1_000_000)
BASE_SETS = {"label_column": "target", "n_qubits": N_QUBITS}


def variant_name(sets: dict[str, Any]) -> str:
    """``auto``, ``fidelity``, ... plus any setting beyond the bench's base ones."""
    extra = [
        f"{k}={v}"
        for k, v in sets.items()
        if k not in (*BASE_SETS, "quantum_method", "quantum_backend")
    ]
    return sets.get("quantum_method", "auto") + (f" ({', '.join(extra)})" if extra else "")


def _methods_for(rows: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    names = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else ["auto"]
    if not args.methods:
        if rows <= EXACT_MAX_BENCH_ROWS and not (rows == 20_000 and args.skip_exact_20k):
            names.append("fidelity")
        if rows in FEATURE_ROWS:
            names += ["nystroem", "projected"]
    out = []
    for name in names:
        sets = dict(BASE_SETS)
        if name != "auto":
            sets["quantum_method"] = name
        if name == "fidelity" and rows >= EXACT_MAX_BENCH_ROWS:
            sets["quantum_max_memory_mb"] = 0  # a 15 000² Gram: priced over the default 8 GiB
        out.append(sets)
    return out


def circuit_limited(r: RunResult) -> bool:
    """An exact-backend run whose method ``auto`` degraded (or fell back) because
    ``quantum_max_circuits`` counted its state preparations as circuits."""
    from pipelines.config import PipelineConfig

    if "quantum_backend" in r.sets or "quantum_max_circuits" in r.sets:
        return False
    if r.fallback and "quantum_max_circuits" in r.fallback_reason:
        return True
    limit = PipelineConfig().quantum_max_circuits
    considered = (r.method_plan or {}).get("considered") or []
    return bool(limit) and any(c["circuits"] > limit for c in considered[:-1])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def _estimate_of(r: RunResult) -> tuple[dict[str, Any] | None, str]:
    """The estimate's cost of the method the run actually ran (and what it chose)."""
    est = r.estimate or {}
    chosen = est.get("chosen") or "refused"
    return (est.get("methods") or {}).get(r.ran), chosen


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--rows",
        default=",".join(str(s) for s in SIZES),
        help="comma-separated table sizes (default %(default)s; '' for none)",
    )
    ap.add_argument(
        "--methods",
        default="",
        help="comma-separated quantum_method values to run at every size "
        "(default: auto everywhere, fidelity up to 20 000 rows, nystroem and "
        "projected at 1 000 and 20 000)",
    )
    ap.add_argument(
        "--skip-shots",
        action="store_true",
        help="skip the built-in dataset on the shot-based backends",
    )
    ap.add_argument("--shots-only", action="store_true", help="only the shot-based runs")
    ap.add_argument(
        "--skip-exact-20k",
        action="store_true",
        help="skip the exact fidelity run at 20 000 rows (a 15 000² Gram)",
    )
    ap.add_argument(
        "--no-circuit-workaround",
        action="store_true",
        help="do not rerun auto with quantum_max_circuits=0 when the circuit "
        "budget (counting exact state preparations) degraded it",
    )
    ap.add_argument(
        "--isolate",
        action="store_true",
        help="also run the quantum step's library function in its own process "
        "under time -v, to cross-check the per-process sampling",
    )
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every measured run (repeatable), e.g. OPENBLAS_NUM_THREADS=1",
    )
    ap.add_argument(
        "--work",
        default="",
        help="working directory (default: a temp dir, removed at the end unless --keep)",
    )
    ap.add_argument("--keep", action="store_true", help="keep data and state dirs")
    ap.add_argument("--json-out", default="", help="also write the raw results as JSON here")
    args = ap.parse_args(argv)
    EXTRA_ENV.update(dict(item.split("=", 1) for item in args.env))
    sizes = [int(s.replace("_", "")) for s in args.rows.split(",") if s.strip()]
    if args.shots_only:
        sizes = []
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="qubeflow-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    data_dir.mkdir(exist_ok=True)

    import numpy as np

    print(
        f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{_mem_total_gib():.0f} GB RAM, Python {platform.python_version()}, NumPy "
        f"{np.__version__}; {dt.date.today().isoformat()}"
    )
    print(
        f"# repo {REPO} (PYTHONPATH), work dir {work}; n_qubits={N_QUBITS}, defaults "
        "otherwise; every run: its own mlflow server, state dir and cwd"
        + (f"; extra env {EXTRA_ENV}" if EXTRA_ENV else ""),
        flush=True,
    )

    results: list[RunResult] = []
    quality: dict[str, Any] | None = None
    isolated: dict[str, Measured] = {}
    checks: list[tuple[bool, str]] = []
    notes: list[str] = []
    for rows in sizes:
        print(f"\n== {rows:,} rows", flush=True)
        csv = make_csv(rows, data_dir)
        variants = _methods_for(rows, args)
        done: dict[str, RunResult] = {}
        k = 0
        while k < len(variants):
            sets = variants[k]
            k += 1
            name = variant_name(sets)
            method = sets.get("quantum_method", "auto")
            auto = done.get("auto")
            if (
                method != "auto"
                and auto is not None
                and auto.ok
                and not auto.fallback
                and auto.ran == method
                and sets == {**BASE_SETS, "quantum_method": method}
            ):
                dup = RunResult(
                    **{
                        **auto.__dict__,
                        "label": f"{rows}-{method}",
                        "requested": name,
                        "same_as": "auto",
                    }
                )
                print(
                    f"  {name}: auto already ran {method} with the same settings (reused)",
                    flush=True,
                )
                results.append(dup)
                done[name] = dup
                continue
            r = run_pipeline(f"{rows}-{_slug(name)}", rows, str(csv), sets, work)
            results.append(r)
            done[name] = r
            if rows in ESTIMATE_ROWS:
                r.estimate, em = run_estimate(
                    f"{rows}-{_slug(name)}-estimate", str(csv), sets, work
                )
                r.estimate_rc = em.rc
                cost, chosen = _estimate_of(r)
                print(
                    f"    estimate ({em.wall:.1f} s, exit {em.rc}): chooses {chosen}; for "
                    f"{r.ran}: peak {cost and cost.get('memory_mib')} MiB, kernel time "
                    f"{cost and cost.get('seconds')} s",
                    flush=True,
                )
            if args.isolate and r.ok and not r.fallback and method in ("auto", "fidelity"):
                m = isolated_quantum_step(r, sets, work)
                isolated[r.label] = m
                print(
                    f"    isolated quantum step: {m.wall:.1f} s, max RSS "
                    f"{mib(m.maxrss_bytes)} MiB (rc {m.rc})",
                    flush=True,
                )
            if name == "auto" and r.ok and circuit_limited(r) and not args.no_circuit_workaround:
                print(
                    "    auto was limited by quantum_max_circuits counting exact state "
                    "preparations; rerunning with quantum_max_circuits=0",
                    flush=True,
                )
                variants.insert(k, {**sets, "quantum_max_circuits": 0})
        nys = done.get("nystroem") or next(
            (r for r in done.values() if r.requested == "auto" and r.ran == "nystroem"), None
        )
        if rows == 20_000 and nys is not None and nys.ok and not nys.fallback:
            quality = nystroem_quality(nys)
            fid = next(
                (r for r in done.values() if r.ran == "fidelity" and r.ok and not r.fallback), None
            )
            quality["auc_nystroem"] = nys.auc_q
            quality["auc_exact"] = fid.auc_q if fid else None
            print(
                f"  Nystroem kernel error {quality['error']:.4g} on {quality['sample']} rows "
                f"(m={quality['landmarks']}, rank {quality['rank']})",
                flush=True,
            )

    shot_rows: list[dict[str, Any]] = []
    if not args.skip_shots:
        print("\n== built-in dataset on shot-based backends", flush=True)
        for backend in SHOT_BACKENDS:
            sets = {"quantum_backend": backend, "n_qubits": SHOT_QUBITS}
            tag = _slug(backend)
            est, em = run_estimate(f"shots-{tag}-estimate", "sklearn:breast_cancer", sets, work)
            r = run_pipeline(f"shots-{tag}", 569, "sklearn:breast_cancer", sets, work)
            shot_rows.append({"backend": backend, "estimate": est, "estimate_rc": em.rc, "run": r})

    lines = print_runs(results) if results else []
    if quality:
        gap = (
            None
            if quality.get("auc_exact") is None or quality.get("auc_nystroem") is None
            else quality["auc_nystroem"] - quality["auc_exact"]
        )
        quality["auc_gap"] = gap
        lines += [
            "",
            "## Nyström at 20 000 rows (default m)",
            "",
            f"kernel approximation error ‖K − ΦΦᵀ‖_F / ‖K‖_F = {quality['error']:.4g} on "
            f"a {quality['sample']:,}-row sample of the train angles (m = "
            f"{quality['landmarks']}, numerical rank {quality['rank']}, kept trace "
            f"{quality['kept_trace']:.6f})",
            f"test ROC AUC: nystroem {fmt(quality['auc_nystroem'], '.4f')}, exact fidelity "
            f"{fmt(quality['auc_exact'], '.4f')}, difference {fmt(gap, '+.4f')}",
        ]
    priced = [r for r in results if r.estimate is not None and not r.same_as]
    if priced:
        lines += [
            "",
            "## `qubeflow estimate` (same settings) vs the measured quantum step "
            "process (`train-quantum-model`, VmHWM)",
            "",
            f"{'rows':>9} {'run':<34}{'chooses':<10}{'ran':<10}{'est. MiB':>9}"
            f"{'meas. MiB':>10}{'error':>7}{'est. kernel s':>14}{'q-fit s':>8}",
        ]
        lines.append("-" * len(lines[-1]))
        for r in priced:
            cost, chosen = _estimate_of(r)
            predicted = cost["memory_mib"] * MiB if cost else None
            rel = (
                (predicted - r.quantum_peak) / r.quantum_peak
                if predicted and r.quantum_peak and not r.fallback
                else None
            )
            lines.append(
                f"{r.rows:>9,} {r.requested[:33]:<34}{chosen:<10}{r.ran or '-':<10}"
                f"{mib(predicted):>9}{mib(r.quantum_peak):>10}{fmt(rel, '+.0%'):>7}"
                f"{fmt(cost and cost.get('seconds'), '.1f'):>14}"
                f"{fmt(r.lib.get('quantum-fit'), '.1f'):>8}"
                + ("  (fallback: no quantum work)" if r.fallback else "")
            )
    if isolated:
        lines += ["", "## The quantum step's library function alone (time -v)", ""]
        for label, m in isolated.items():
            tail = m.stdout.strip().splitlines()[-1] if m.stdout.strip() else ""
            lines.append(
                f"{label}: {m.wall:.1f} s, max RSS {mib(m.maxrss_bytes)} MiB (rc {m.rc}); {tail}"
            )
    if shot_rows:
        lines += [
            "",
            "## Built-in dataset (569 rows) on shot-based backends, n_qubits=4",
            "",
            f"{'backend':<32}{'est. method':<13}{'est. circuits':>14}{'within':>8}"
            f"{'ran':>11}{'recorded':>10}{'vs exact':>10}{'wall s':>8}{'est MiB':>8}"
            f"{'q MiB':>7}{'AUC q':>8}{'AUC c':>8}  note",
        ]
        lines.append("-" * len(lines[-1]))
        for s in shot_rows:
            est, r = s["estimate"] or {}, s["run"]
            chosen = est.get("chosen")
            cost = est.get("methods", {}).get(chosen, {}) if chosen else {}
            ec = cost.get("circuits")
            factor = (EXACT_BUILTIN_CIRCUITS / r.circuits_used) if r.circuits_used else None
            s.update(
                chosen=chosen,
                est_circuits=ec,
                factor=factor,
                est_factor=EXACT_BUILTIN_CIRCUITS / ec if ec else None,
            )
            note = (
                f"FALLBACK {r.fallback_reason}"[:50]
                if r.fallback
                else ("" if r.ok else f"FAILED rc={r.measured.rc}")
            )
            times = f"{fmt(factor, '.0f')}x" if factor else "-"
            lines.append(
                f"{s['backend']:<32}{chosen or '-':<13}{fmt(ec, ','):>14}"
                f"{est.get('within_budget', '-')!s:>8}{r.ran or '-':>11}"
                f"{fmt(r.circuits_used, ','):>10}{times:>10}"
                f"{r.measured.wall:>8.1f}{fmt(cost.get('memory_mib'), ',.0f'):>8}"
                f"{mib(r.quantum_peak):>7}{fmt(r.auc_q, '.4f'):>8}"
                f"{fmt(r.auc_c, '.4f'):>8}  {note}"
            )
        lines.append(
            f"exact Gram + test kernel: {EXACT_BUILTIN_CIRCUITS:,} circuits. est. "
            "circuits: the estimate (and the budget) before the run; recorded: the "
            "sum over the run's jobs in calibration.json"
        )

    # ---- targets
    def runs_at(rows: int, prefix: str = "auto") -> list[RunResult]:
        return [
            r
            for r in results
            if r.rows == rows
            and not r.same_as
            and (r.requested == prefix or r.requested.startswith(prefix + " ("))
        ]

    for rows, secs, limit in (
        (20_000, T_20K_SECONDS, T_20K_BYTES),
        (1_000_000, T_1M_SECONDS, T_1M_BYTES),
    ):
        for r in runs_at(rows):
            ok = (
                r.ok
                and not r.fallback
                and r.measured.wall <= secs
                and r.measured.maxrss_bytes <= limit
            )
            what = "default full run" if r.requested == "auto" else f"full run, {r.requested}"
            checks.append(
                (
                    ok,
                    f"{rows:,} rows, {what}: {r.measured.wall:.1f} s wall (target "
                    f"<= {secs:.0f} s), peak RSS {r.measured.maxrss_bytes / GiB:.2f} "
                    f"GiB in {r.measured.largest_label} (target <= "
                    f"{limit / GiB:.0f} GiB), method {r.ran}"
                    + (f", FALLBACK ({r.fallback_reason[:90]})" if r.fallback else ""),
                )
            )
    if quality:
        gap = quality.get("auc_gap")
        checks.append(
            (
                gap is not None and abs(gap) <= T_AUC_GAP,
                f"20,000 rows: Nystroem (m={quality['landmarks']}) test ROC AUC "
                f"{fmt(quality['auc_nystroem'], '.4f')} vs exact "
                f"{fmt(quality['auc_exact'], '.4f')}: difference {fmt(gap, '+.4f')} "
                f"(target within {T_AUC_GAP}); kernel error {quality['error']:.3g}",
            )
        )
    for s in shot_rows:
        r = s["run"]
        est = s["estimate"] or {}
        # >= 10x on both counts: the estimate's (what the budget reserved) and the job records'
        factors = [f for f in (s["factor"], s["est_factor"]) if f is not None]
        ok = (
            r.ok
            and not r.fallback
            and len(factors) == 2
            and min(factors) >= T_CIRCUIT_FACTOR
            and bool(est.get("within_budget"))
            and s["estimate_rc"] == 0
            and est.get("chosen") == r.ran
        )
        checks.append(
            (
                ok,
                f"{s['backend']} (built-in, 4 qubits): the estimate said "
                f"{s['chosen']}, {fmt(s['est_circuits'], ',')} circuits "
                f"({fmt(s['est_factor'], '.0f')}x fewer than "
                f"{EXACT_BUILTIN_CIRCUITS:,}), within_budget="
                f"{est.get('within_budget')}; the run ran {r.ran or '-'}"
                f"{' FALLBACK ' + r.fallback_reason if r.fallback else ''} within the "
                f"default budget, {fmt(r.circuits_used, ',')} circuits recorded "
                f"({fmt(s['factor'], '.0f')}x fewer; target >= "
                f"{T_CIRCUIT_FACTOR:.0f}x)",
            )
        )
        if s["est_circuits"] and r.circuits_used and s["est_circuits"] != r.circuits_used:
            notes.append(
                f"{s['backend']}: recorded {r.circuits_used:,} circuits != estimated "
                f"{s['est_circuits']:,} ({r.circuits_used / s['est_circuits']:.0f}x): "
                "the job records count observables (3 x n_qubits per row), the "
                "estimate measurement bases (3 per row)"
            )
    for rows in (20_000, 1_000_000):
        for r in runs_at(rows):
            if r.estimate is None:
                continue
            cost, chosen = _estimate_of(r)
            predicted = cost["memory_mib"] if cost else None
            measured = r.quantum_peak / MiB if r.quantum_peak and not r.fallback else None
            rel = (predicted - measured) / measured if predicted and measured else None
            checks.append(
                (
                    rel is not None and abs(rel) <= T_MEMORY_REL,
                    f"{rows:,} rows, {r.requested}: estimate peak memory of {r.ran} "
                    f"{fmt(predicted, ',.0f')} MiB (estimate chooses {chosen}) vs "
                    f"measured quantum step {fmt(measured, ',.0f')} MiB: "
                    f"{fmt(rel, '+.0%')} (target within {T_MEMORY_REL:.0%})"
                    + (" - fallback, nothing to compare" if r.fallback else ""),
                )
            )
    lines += ["", "## Targets", ""]
    lines += [f"[{'PASS' if ok else 'FAIL'}] {text}" for ok, text in checks]
    lines += [f"[NOTE] {text}" for text in notes]
    print("\n".join(lines), flush=True)

    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {
                    "runs": [_result_dict(r) for r in results],
                    "nystroem_quality": quality,
                    "shots": [
                        {
                            **{k: v for k, v in s.items() if k != "run"},
                            "run": _result_dict(s["run"]),
                        }
                        for s in shot_rows
                    ],
                    "isolated": {
                        k: {
                            "wall": m.wall,
                            "maxrss": m.maxrss_bytes,
                            "rc": m.rc,
                            "stdout": m.stdout[-2000:],
                        }
                        for k, m in isolated.items()
                    },
                    "checks": [{"pass": ok, "text": t} for ok, t in checks],
                    "tables": lines,
                },
                indent=2,
                default=str,
            )
        )
    if not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(ok for ok, _ in checks) else 1


def _result_dict(r: RunResult) -> dict[str, Any]:
    m = r.measured
    return {
        "label": r.label,
        "rows": r.rows,
        "requested": r.requested,
        "ran": r.ran,
        "rc": m.rc,
        "wall": m.wall,
        "cpu": m.cpu_seconds,
        "load": m.load_before,
        "maxrss": m.maxrss_bytes,
        "largest": m.largest_label,
        "largest_hwm": m.largest_bytes,
        "tree_peak": m.tree_peak_bytes,
        "proc_peaks": m.proc_peaks,
        "steps": r.steps,
        "lib": r.lib,
        "auc_q": r.auc_q,
        "auc_c": r.auc_c,
        "quantum_peak": r.quantum_peak,
        "fallback": r.fallback,
        "fallback_reason": r.fallback_reason,
        "circuits_used": r.circuits_used,
        "method_plan": r.method_plan,
        "same_as": r.same_as,
        "sets": r.sets,
        "estimate": r.estimate,
        "estimate_rc": r.estimate_rc,
    }


def _mem_total_gib() -> float:
    with open("/proc/meminfo") as f:
        kib = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
    return kib / 2**20


if __name__ == "__main__":
    sys.exit(main())
