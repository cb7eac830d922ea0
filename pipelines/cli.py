"""``qubeflow``: the user's entry point.

    qubeflow run [--config FILE] [--set key=value ...] [--json]   run the pipeline locally
    qubeflow compile [--out DIR]                                  write retraining.yaml
    qubeflow backends [--json]                                    list quantum backends
    qubeflow estimate [--config FILE] [--set key=value ...] [--json]  quantum step's cost
    qubeflow params [--json]                                      list pipeline parameters
    qubeflow submit --host URL [--experiment NAME] [--recurring CRON] [--set k=v ...] [--dry-run]
                    [--allow-local-tracking]
    qubeflow history  --model NAME [--at TIME] [--json]           champion history
    qubeflow promote  --model NAME --version V [--policy FILE] [--mode M]  gate a version by hand
    qubeflow rollback --model NAME [--reason TEXT]                champion back to the previous

The registry commands use --tracking-uri, else $MLFLOW_TRACKING_URI, else the local store that
`qubeflow run` writes (read and written directly: no server is started).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from components.errors import ConfigError, QubeflowError
from components.runtime import setup_logging


def _fmt_metrics(summary: dict[str, Any]) -> list[str]:
    metrics = summary.get("metrics", {})
    kinds = [k for k in ("quantum", "classical") if k in metrics]
    names = sorted({n for k in kinds for n in metrics[k]})
    lines = ["  " + f"{'metric':<20}" + "".join(f"{k:>12}" for k in kinds)]
    for n in names:
        lines.append(
            "  " + f"{n:<20}" + "".join(f"{metrics[k].get(n, float('nan')):>12.4f}" for k in kinds)
        )
    return lines


def _fmt_calibration(summary: dict[str, Any]) -> list[str]:
    tags = summary.get("quantum_tags") or {}
    if "quantum.calibration_hash" not in tags:
        return []
    when = tags.get("quantum.calibration_time", "")
    calibrated = "no device calibration" if when.startswith("none") else f"calibrated {when}"
    return [
        f"  calibration    {tags.get('quantum.backend_kind')}, {calibrated}, shots "
        f"{tags.get('quantum.shots')}, depth {tags.get('quantum.circuit_depth')}, hash "
        f"{tags['quantum.calibration_hash'][:12]} (calibration/calibration.json)"
    ]


def _fmt_method(summary: dict[str, Any]) -> list[str]:
    tags = summary.get("quantum_tags") or {}
    if "quantum.method" not in tags:
        return []
    return [f"  method         {tags['quantum.method']} ({tags.get('quantum.method_reason', '')})"]


def _fmt_why(s: dict[str, Any]) -> list[str]:
    """The gate's reasons, one per line: the failing rules, or the choices the rules made."""
    reasons = s.get("reasons") or []
    return [f"  {'why' if i == 0 else '':<15}{r}" for i, r in enumerate(reasons)]


def _fmt_gate_metrics(s: dict[str, Any]) -> list[str]:
    """Candidate vs champion vs baseline per metric, with the thresholds and the verdict."""
    from components.registry.gate import align

    rows = s.get("gate_metrics") or []
    if not rows:
        return []
    champ = s.get("champion_at_decision")

    def fmt(v: Any) -> str:
        return "—" if v is None else f"{v:.4f}"

    table = [
        [
            "metric",
            f"candidate v{s['model_version']}",
            f"champion v{champ}" if champ else "champion",
            "baseline",
            "threshold",
            "result",
        ]
    ] + [
        [
            r["metric"],
            fmt(r["candidate"]),
            fmt(r["champion"]),
            fmt(r["baseline"]),
            r["threshold"] or "—",
            r["result"] or "—",
        ]
        for r in rows
    ]
    return align(table, indent=" " * 17)


def human_summary(result: Any) -> str:
    s = result.summary
    cfg = result.config
    quantum = f"on ({cfg.quantum_backend})" if cfg.quantum_enabled else "off"
    lines = [
        "",
        f"Qubeflow retraining finished in {result.seconds:.1f} s",
        f"  dataset        {cfg.dataset} (label '{cfg.label_column}')",
        f"  quantum step   {quantum}; fallback: "
        + (f"YES ({s.get('fallback_reason')})" if s.get("fallback") else "no"),
        *_fmt_method(s),
        *_fmt_calibration(s),
        "",
        *_fmt_metrics(s),
        "",
        f"  registered     {s['model_name']} version {s['model_version']} "
        f"(candidate: {s.get('candidate_kind', 'classical')} model)",
        *([f"                 {s['candidate_reason']}"] if s.get("candidate_reason") else []),
        f"  gate           {s.get('gate_headline', s['decision'])} (mode {s.get('gate_mode')}, "
        f"policy {s.get('policy_hash')})",
        *_fmt_why(s),
        *_fmt_gate_metrics(s),
        f"  champion       {s['model_name']}@champion -> "
        + (f"version {s['champion_version']}" if s.get("champion_version") else "none yet"),
        f"  MLflow run     {s['run_id']} (experiment {s['experiment_id']})",
    ]
    if result.started_server:
        lines.append(
            "  browse         make mlflow-ui   (tracking server on the local store, "
            "http://127.0.0.1:5000)"
        )
    else:
        lines.append(
            f"  browse         {s['tracking_uri']}/#/experiments/{s['experiment_id']}"
            f"/runs/{s['run_id']}?workflowType=machine_learning"
        )
    if result.extra.get("pipeline_failure"):
        lines.append(
            "  KFP run        FAILED (the quantum task died); the classical baseline was "
            "registered instead"
        )
    lines.append(f"  KFP outputs    {result.pipeline_root}")
    if result.extra.get("log"):
        lines.append(f"  full log       {result.extra['log']}")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.config import PipelineConfig
    from pipelines.local import run_locally

    config = PipelineConfig.load(args.config, args.set)
    result = run_locally(config, state_dir=args.state_dir, verbose=args.verbose)
    summary = dict(result.summary)
    summary.update(
        {
            "quantum_enabled": result.config.quantum_enabled,
            "quantum_backend": result.config.quantum_backend,
            "seconds": round(result.seconds, 2),
        }
    )
    result.summary = summary
    print(human_summary(result), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from pipelines.run_records import reap_dead_runs

    done = reap_dead_runs(Path(args.state_dir).resolve())
    print("\n".join(done) if done else "nothing to clean up: no killed run in " + args.state_dir)
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from pipelines.retraining import compile_pipeline

    path = compile_pipeline(args.out)
    print(f"wrote {path}")
    return 0


def cmd_backends(args: argparse.Namespace) -> int:
    from components.quantum.backends import list_backends

    rows = list_backends()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0
    print(f"{'family':<14}{'usable':<8}{'example':<32}description / why not")
    for r in rows:
        print(
            f"{r.family:<14}{'yes' if r.usable else 'no':<8}{r.example:<32}"
            f"{r.description if r.usable else 'NOT USABLE: ' + r.reason}"
        )
        if r.details:
            print(f"{'':<22}{'':<32}{r.details}")
    print(
        "\nName a backend with --set quantum_backend=NAME; options go after '?', e.g. "
        "qiskit-aer?noise=FakeManilaV2&shots=2048"
    )
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    """Print the quantum step's and the classical baseline's cost; exit 3 when either is over
    its limit (the quantum step would refuse and fall back; the data step would fail the run)."""
    from pipelines.config import PipelineConfig
    from pipelines.estimate import estimate_run, format_estimate

    config = PipelineConfig.load(args.config, args.set)
    estimate = estimate_run(config)
    if args.json:
        print(json.dumps(estimate.to_dict(), sort_keys=True))
    else:
        print(format_estimate(estimate, config))
    return 3 if estimate.refusals or estimate.baseline_refusal else 0


def cmd_submit(args: argparse.Namespace) -> int:
    """Compile and submit to a KFP cluster (``--dry-run``: print what would be sent)."""
    from pipelines.config import PipelineConfig
    from pipelines.submit import describe, prepare, submit

    config = PipelineConfig.load(args.config, args.set)
    with prepare(
        config,
        host=args.host or os.environ.get("KFP_HOST", ""),
        experiment=args.experiment,
        run_name=args.run_name,
        recurring=args.recurring,
        namespace=args.namespace,
        package=args.package,
        allow_local_tracking=args.allow_local_tracking,
        service_account=args.service_account,
    ) as sub:
        if args.dry_run:
            print(describe(sub))
            return 0
        ids = submit(sub)
    print(json.dumps({**ids, "host": sub.host, "experiment": sub.experiment}, sort_keys=True))
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    """Every pipeline parameter: type, default, allowed values, unit and description (the
    same text the compiled pipeline carries)."""
    import textwrap

    from pipelines.config import PipelineConfig, parameter_docs

    defaults = PipelineConfig()
    types = PipelineConfig.types()
    rows = [
        {
            "name": name,
            "type": types[name].__name__,
            "default": getattr(defaults, name),
            "choices": list(doc.choices),
            "unit": doc.unit,
            "description": doc.description,
        }
        for name, doc in parameter_docs().items()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']:<26}{row['type']:<7}{row['default']!r}")
        extra = []
        if row["choices"]:
            extra.append("allowed: " + " | ".join(repr(c) for c in row["choices"]))
        if row["unit"]:
            extra.append(f"unit: {row['unit']}")
        if extra:
            print(f"{'':<4}{'; '.join(extra)}")
        print(
            textwrap.fill(
                row["description"],
                width=96,
                initial_indent=" " * 4,
                subsequent_indent=" " * 4,
                break_on_hyphens=False,
                break_long_words=False,
            )
        )
    print("\nSet with --set name=value, a --config YAML file, or the params ConfigMap.")
    return 0


@contextlib.contextmanager
def registry(args: argparse.Namespace) -> Iterator[Any]:
    """An MLflow client for the registry commands (see the module docstring)."""
    from components.registry.client import registry_client
    from pipelines.mlflow_server import direct_local_store

    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri:
        yield registry_client(uri)
        return
    state = Path(args.state_dir)
    if not (state / "mlflow.db").is_file():
        raise ConfigError(
            f"no tracking server given and no local store at {state}/mlflow.db; "
            "pass --tracking-uri or set MLFLOW_TRACKING_URI",
            field="--tracking-uri",
        )
    with direct_local_store(state) as uri:  # no server start: the store itself
        yield registry_client(uri)


def cmd_history(args: argparse.Namespace) -> int:
    from components.registry.history import champion_at
    from components.registry.promotion import history_report

    with registry(args) as client:
        report = history_report(client, args.model)
    if args.at:
        entry = champion_at(report.entries, args.at)
        answer = {
            "model_name": args.model,
            "at": args.at,
            "champion": entry.version if entry else None,
            "entry": entry.__dict__ if entry else None,
        }
        if args.json:
            print(json.dumps(answer, sort_keys=True))
        elif entry is None:
            print(f"{args.model} had no champion at {args.at}")
        else:
            print(
                f"{args.model}@champion at {args.at}: v{entry.version} ({entry.action} at "
                f"{entry.at} by {entry.actor or '?'}: {entry.reason})"
            )
        return 0
    print(json.dumps(report.to_dict(), sort_keys=True) if args.json else report.to_text())
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """Exit 0 when the decision is promote (or skipped), 4 when rejected."""
    from components.registry.policy import load_policy
    from components.registry.promotion import promote_version

    policy = load_policy(args.policy, mode=args.mode or "")
    with registry(args) as client:
        decision = promote_version(client, args.model, str(args.version), policy)
    if args.json:
        print(json.dumps(decision.to_dict(), sort_keys=True))
    else:
        print(decision.to_text())
    return 4 if decision.outcome == "reject" else 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from components.registry.policy import load_policy
    from components.registry.promotion import rollback_champion

    policy = load_policy(args.policy)
    with registry(args) as client:
        result = rollback_champion(client, args.model, policy, reason=args.reason)
    print(
        f"{result.model_name}@champion: v{result.demoted} -> v{result.champion} "
        f"(history #{result.entry.seq}, {result.entry.at})"
    )
    return 0


def _registry_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="registered model name")
    p.add_argument(
        "--tracking-uri",
        default="",
        help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else the local store)",
    )
    p.add_argument(
        "--state-dir",
        default=".qubeflow",
        help="local store used when no tracking URI is given (default .qubeflow)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qubeflow", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging; show every line the pipeline steps print",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the retraining pipeline locally (kfp.local + MLflow)")
    run.add_argument("--config", help="YAML file of pipeline parameters")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a pipeline parameter (repeatable); see 'qubeflow params'",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print one machine-readable JSON object last (summary to stderr)",
    )
    run.add_argument(
        "--state-dir",
        default=".qubeflow",
        help="where the local MLflow store and KFP outputs live (default .qubeflow)",
    )
    run.set_defaults(func=cmd_run)

    doctor = sub.add_parser(
        "doctor",
        help="clean up after local runs that were killed (-9): their processes, local server, "
        "RUNNING MLflow runs (marked FAILED) and temp folders; `run` does it too",
    )
    doctor.add_argument(
        "--state-dir", default=".qubeflow", help="the runs' state folder (default .qubeflow)"
    )
    doctor.set_defaults(func=cmd_doctor)

    comp = sub.add_parser("compile", help="compile the pipeline to KFP IR YAML")
    comp.add_argument("--out", default="build", help="output directory (default build/)")
    comp.set_defaults(func=cmd_compile)

    back = sub.add_parser("backends", help="list quantum backends and whether they are usable")
    back.add_argument("--json", action="store_true")
    back.set_defaults(func=cmd_backends)

    est = sub.add_parser(
        "estimate",
        help="circuits, shots, jobs and device time of the quantum step and the classical "
        "baseline's fit time, before anything runs (exit 3 if either is over its limit)",
    )
    est.add_argument("--config", help="YAML file of pipeline parameters")
    est.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    est.add_argument("--json", action="store_true")
    est.set_defaults(func=cmd_estimate)

    subm = sub.add_parser("submit", help="compile and submit to a Kubeflow Pipelines cluster")
    subm.add_argument("--host", default="", help="KFP API endpoint (default $KFP_HOST)")
    subm.add_argument("--experiment", default="qubeflow-retraining")
    subm.add_argument("--run-name", default="", help="default retrain-$HOSTNAME")
    subm.add_argument(
        "--recurring",
        metavar="CRON",
        help="create a recurring run on this cron schedule instead of one run",
    )
    subm.add_argument("--namespace", help="Kubeflow profile namespace (multi-user KFP)")
    subm.add_argument(
        "--service-account",
        default="",
        help="Kubernetes service account of the run's pods (the manifests deploy "
        "qubeflow-pipeline-runner; default: KFP's default runner account)",
    )
    subm.add_argument(
        "--config",
        help="YAML file of pipeline parameters, or a directory of "
        "one file per parameter (a mounted ConfigMap)",
    )
    subm.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    subm.add_argument("--package", help="submit this compiled YAML instead of compiling")
    subm.add_argument(
        "--dry-run",
        action="store_true",
        help="validate, compile and print the exact run request (no secrets); send nothing",
    )
    subm.add_argument(
        "--allow-local-tracking",
        action="store_true",
        help="accept an empty or loopback mlflow_tracking_uri (or a local file/SQLite store), "
        "which the cluster's pods normally cannot reach",
    )
    subm.set_defaults(func=cmd_submit)

    params = sub.add_parser(
        "params",
        help="list pipeline parameters: type, default, allowed values, unit, description",
    )
    params.add_argument("--json", action="store_true")
    params.set_defaults(func=cmd_params)

    from components.registry.policy import DEFAULT_POLICY, MODES

    hist = sub.add_parser("history", help="which version was champion when, and why")
    _registry_args(hist)
    hist.add_argument("--at", help="ISO-8601 time: print only the champion then")
    hist.add_argument("--json", action="store_true")
    hist.set_defaults(func=cmd_history)

    prom = sub.add_parser(
        "promote",
        help="evaluate a registered version under a policy and "
        "apply the decision (exit 4 if rejected)",
    )
    _registry_args(prom)
    prom.add_argument("--version", required=True, help="model version to evaluate")
    prom.add_argument("--policy", default=DEFAULT_POLICY, help="policy YAML file")
    prom.add_argument("--mode", choices=MODES, help="override the policy's mode")
    prom.add_argument("--json", action="store_true")
    prom.set_defaults(func=cmd_promote)

    roll = sub.add_parser("rollback", help="move champion back to the previous champion")
    _registry_args(roll)
    roll.add_argument("--reason", default="", help="why (recorded in the history)")
    roll.add_argument(
        "--policy",
        default=DEFAULT_POLICY,
        help="policy whose concurrency settings apply (lock timeout, lease)",
    )
    roll.set_defaults(func=cmd_rollback)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args))
    except QubeflowError as exc:
        print(f"qubeflow: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qubeflow: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
