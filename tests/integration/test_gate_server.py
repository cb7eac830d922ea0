"""The gate against a real ``mlflow server``: concurrent promotions from parallel processes,
the lock, the server stopped at the worst moments, rollback and history through the CLI."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from components.errors import RegistryError
from components.registry import mlflow_names as names
from components.registry.client import current_champion, registry_client
from components.registry.history import read_history
from components.registry.lock import RegistryLock, lock_name
from components.registry.policy import parse_policy
from components.registry.promotion import history_report, promote_version
from pipelines.mlflow_server import LocalMlflowServer
from tests.support import MovableClock, log_tiny_model

# One worker builds the module-scoped fixtures (a champion per method, a server) once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gate-server")]
LINEAGE = {
    names.TAG_DATASET_SHA256: "ab" * 32,
    names.TAG_GIT_COMMIT: "deadbeef",
    names.TAG_KFP_JOB_ID: "job-1",
    names.TAG_MODEL_KIND: "classical",
    names.TAG_QUANTUM_ENABLED: "false",
}
# Margins no machine load can use up: a gate waits up to 300 s for the lock, and a live
# gate's lease (600 s) never runs out mid-gate. Tests that need a lease to end move the
# gates' clock past it (MovableClock) instead of sleeping.
POLICY = {
    "thresholds": {"roc_auc": 0.9},
    "champion": {"roc_auc": {"max_regression": 0.0}},
    "concurrency": {"lock_timeout_seconds": 300, "lock_lease_seconds": 600},
}


@pytest.fixture(scope="module")
def logged_model(mlflow_server):
    """One tiny logged model every test version points at (versions differ by their tags)."""
    return log_tiny_model(mlflow_server.uri, "gate-tests")


def make_versions(client, name: str, scores: list[float], logged) -> list[str]:
    run_id, info = logged
    client.create_registered_model(name)
    out = []
    for score in scores:
        tags = {**LINEAGE, "metric.roc_auc": f"{score:.6f}", names.TAG_GATE_APPLIED: "pending"}
        mv = client.create_model_version(
            name, info.model_uri, run_id=run_id, tags=tags, model_id=info.model_id
        )
        out.append(str(mv.version))
    return out


def cli(*args: str, uri: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args, "--tracking-uri", uri],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_policy(path: Path, data: dict) -> str:
    import yaml

    path.write_text(yaml.safe_dump(data))
    return str(path)


# ---- concurrency -----------------------------------------------------------------------


def test_parallel_promotions_never_leave_the_worse_model_champion(
    mlflow_server, logged_model, tmp_path
):
    client = registry_client(mlflow_server.uri)
    name = "race-model"
    scores = [0.92, 0.97, 0.94, 0.95, 0.93]
    versions = make_versions(client, name, scores, logged_model)
    policy = write_policy(tmp_path / "p.yaml", POLICY)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipelines.cli",
                "promote",
                "--model",
                name,
                "--version",
                v,
                "--policy",
                policy,
                "--json",
                "--tracking-uri",
                mlflow_server.uri,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for v in versions
    ]
    results = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert set(codes) <= {0, 4}, [r[1][-2000:] for r in results]
    decisions = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]

    best = versions[scores.index(max(scores))]
    assert current_champion(client, name) == best
    history = read_history(client, name)
    moves = [e for e in history if e.moves]
    # each move was decided against the champion it replaced: a chain, never a step down
    for before, after in itertools.pairwise(moves):
        assert after.previous == before.version
        assert scores[versions.index(after.version)] >= scores[versions.index(before.version)]
    assert moves[-1].version == best
    # Every decision by hand is its own record, made against the champion of its moment;
    # none rewrote the version's own record (made at registration: applied=pending here).
    assert sorted(e.version for e in history) == sorted(versions)
    for v, d in zip(versions, decisions, strict=True):
        (entry,) = [e for e in history if e.version == v]
        assert entry.previous == d["champion_version_at_decision"], (v, d)
        assert entry.moves == (d["applied"] == "true")
        tags = client.get_model_version(name, v).tags
        assert tags[names.TAG_GATE_APPLIED] == "pending" and names.TAG_GATE_DECISION not in tags
    assert client.search_registered_models(f"name='{lock_name(name)}'") == []


def test_a_held_lock_blocks_a_second_gate_with_a_clear_error(mlflow_server, logged_model, tmp_path):
    client = registry_client(mlflow_server.uri)
    name = "locked-model"
    (v1,) = make_versions(client, name, [0.95], logged_model)
    # The second gate gives up after 2 s: the lock it waits for is held (lease 1 h), so it
    # gives up however long its process takes to get there.
    policy = write_policy(
        tmp_path / "p.yaml",
        {**POLICY, "concurrency": {"lock_timeout_seconds": 2, "lock_lease_seconds": 600}},
    )
    with RegistryLock(client, name, actor="nightly-run-41", lease_s=3600):
        proc = cli(
            "promote", "--model", name, "--version", v1, "--policy", policy, uri=mlflow_server.uri
        )
        assert proc.returncode == 2, proc.stderr
        assert "is locked by nightly-run-41" in proc.stderr
        assert names.TAG_GATE_DECISION not in client.get_model_version(name, v1).tags
        assert current_champion(client, name) is None
    proc = cli(
        "promote", "--model", name, "--version", v1, "--policy", policy, uri=mlflow_server.uri
    )
    assert proc.returncode == 0, proc.stderr
    assert current_champion(client, name) == v1


# ---- rollback and history through the CLI ------------------------------------------------


def test_rollback_and_history(mlflow_server, logged_model, tmp_path):
    client = registry_client(mlflow_server.uri)
    name = "history-model"
    v1, v2, v3 = make_versions(client, name, [0.91, 0.95, 0.96], logged_model)
    policy = write_policy(tmp_path / "p.yaml", POLICY)
    for v in (v1, v2):
        assert (
            cli(
                "promote",
                "--model",
                name,
                "--version",
                v,
                "--policy",
                policy,
                uri=mlflow_server.uri,
            ).returncode
            == 0
        )
    between = datetime.now(UTC).isoformat()
    time.sleep(0.05)  # only keeps v3's timestamps apart from `between`; load only widens the gap
    assert (
        cli(
            "promote", "--model", name, "--version", v3, "--policy", policy, uri=mlflow_server.uri
        ).returncode
        == 0
    )
    proc = cli("rollback", "--model", name, "--reason", "drift alarm on v3", uri=mlflow_server.uri)
    assert proc.returncode == 0, proc.stderr
    assert f"v{v3} -> v{v2}" in proc.stdout
    assert current_champion(client, name) == v2
    assert names.TAG_GATE_DEMOTED_AT in client.get_model_version(name, v3).tags
    assert cli("rollback", "--model", name, uri=mlflow_server.uri).returncode == 0
    assert current_champion(client, name) == v1  # steps back again, does not toggle to v3
    proc = cli("rollback", "--model", name, uri=mlflow_server.uri)
    assert proc.returncode == 2 and "first champion" in proc.stderr

    proc = cli("history", "--model", name, "--json", uri=mlflow_server.uri)
    report = json.loads(proc.stdout)
    assert [(e["action"], e["version"], e["previous"]) for e in report["history"]] == [
        ("promote", v1, None),
        ("promote", v2, v1),
        ("promote", v3, v2),
        ("rollback", v2, v3),
        ("rollback", v1, v2),
    ]
    assert report["history"][3]["reason"] == "drift alarm on v3"
    assert report["history"][2]["policy_hash"] == parse_policy(POLICY).hash
    assert report["warnings"] == []
    text = cli("history", "--model", name, uri=mlflow_server.uri).stdout
    assert "drift alarm on v3" in text and f"current champion: v{v1}" in text
    at = cli("history", "--model", name, "--at", between, "--json", uri=mlflow_server.uri)
    assert json.loads(at.stdout)["champion"] == v2


# ---- the server stopped at the worst moments ----------------------------------------------


class StopServerBefore:
    """The real client, except that the server is stopped right before the first call of
    ``method`` for which ``when(*args)`` holds (that call and everything after fail)."""

    def __init__(self, client, server: LocalMlflowServer, method: str, when) -> None:
        self._client, self._server, self._method, self._when = client, server, method, when
        self.fired = False

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if name != self._method:
            return attr

        def call(*args, **kwargs):
            if not self.fired and self._when(*args):
                self.fired = True
                self._server.stop()
            return attr(*args, **kwargs)

        return call


@pytest.fixture
def own_server(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    server = LocalMlflowServer(tmp_path / "mlflow").start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "moment,method,when",
    [
        (
            "before the champion alias moves",
            "set_registered_model_alias",
            lambda name, alias, version: alias == "champion",
        ),
        (
            "after the champion alias moved",
            "set_registered_model_tag",
            lambda name, key, value: key.startswith("gate.history."),
        ),
    ],
)
def test_server_outage_mid_gate_leaves_nothing_half_done(
    own_server, tmp_path, moment, method, when
):
    client = registry_client(own_server.uri)
    name = "outage-model"
    v1, v2, v3 = make_versions(
        client, name, [0.93, 0.96, 0.97], log_tiny_model(own_server.uri, "outage")
    )
    policy = parse_policy(POLICY)  # lease 600 s: no gate here outlives it by being slow
    clock = MovableClock()  # the gates' lease clock; moved forward below, never slept out
    promote_version(client, name, v1, policy, clock=clock)

    flaky = StopServerBefore(client, own_server, method, when)
    with pytest.raises(RegistryError, match="could not undo") as e:
        promote_version(flaky, name, v2, policy, clock=clock)
    assert flaky.fired and "next gate rolls it back" in str(e.value)

    own_server.start()  # same store, same port
    tags = client.get_model_version(name, v2).tags
    assert names.TAG_GATE_DECISION not in tags  # a decision by hand never rewrites the version
    champion = current_champion(client, name)
    assert champion == (v1 if moment.startswith("before") else v2)  # journaled on the lock
    assert [h.version for h in read_history(client, name) if h.moves] == [v1]
    report = history_report(client, name)
    assert any("interrupted" in w for w in report.warnings)

    # Within its lease the dead transaction's lock holds the next gate off (it gives up after
    # its 0.5 s wait: nearly all of the 600 s lease is left, however slow this machine is) ...
    impatient = parse_policy(
        {**POLICY, "concurrency": {"lock_timeout_seconds": 0.5, "lock_lease_seconds": 600}}
    )
    with pytest.raises(RegistryError, match="is locked by"):
        promote_version(client, name, v3, impatient, clock=clock)
    assert current_champion(client, name) == champion

    # ... and once the clock is past the lease, the next gate breaks the lock and rolls the
    # dead transaction back before it decides.
    clock.advance(601)
    decision = promote_version(client, name, v3, policy, clock=clock)
    assert decision.champion_version == v1 and decision.promoted
    assert client.get_model_version(name, v2).tags == tags  # untouched
    history = read_history(client, name)
    assert [(h.version, h.previous, h.action) for h in history] == [
        (v1, None, "promote"),
        (v3, v1, "promote"),
    ]  # the interrupted v2 decision left no entry
    assert current_champion(client, name) == v3
    assert client.search_registered_models(f"name='{lock_name(name)}'") == []
    assert history_report(client, name).warnings == []


def test_registry_commands_use_the_local_store_directly(tmp_path):
    """`history`, `promote`, `rollback` on the store `qubeflow run` writes start no server:
    they read and write its SQLite store and artifact folder directly."""
    state = tmp_path / "state"
    with LocalMlflowServer(state) as server:  # versions made as a pipeline run makes them
        client = registry_client(server.uri)
        v1, v2 = make_versions(client, "local-model", [0.93, 0.96], log_tiny_model(server.uri, "x"))
    policy = write_policy(tmp_path / "p.yaml", POLICY)

    def local(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "-v", *args, "--state-dir", str(state)],
            env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
            capture_output=True,
            text=True,
            timeout=180,
        )

    for v in (v1, v2):
        proc = local("promote", "--model", "local-model", "--version", v, "--policy", policy)
        assert proc.returncode == 0, proc.stderr
        assert "starting mlflow server" not in proc.stderr
        assert f"local-model v{v} (classical): PROMOTED to champion" in proc.stdout
    records = list((state / "mlartifacts").rglob("gate/decisions/*-enabled.json"))
    assert len(records) == 2  # written where the server serves them from
    proc = local("rollback", "--model", "local-model")
    assert proc.returncode == 0 and f"v{v2} -> v{v1}" in proc.stdout, proc.stderr
    report = json.loads(local("history", "--model", "local-model", "--json").stdout)
    assert [(e["kind"], e["version"]) for e in report["history"]] == [
        ("promoted", v1),
        ("promoted", v2),
        ("rolled back", v1),
    ]
    # Wrong names and versions are clear errors naming the option, exit 2, no traceback.
    for args, message in [
        (("promote", "--model", "nope", "--version", "1"), "--model: no registered model 'nope'"),
        (("promote", "--model", "local-model", "--version", "abc"), "positive integer"),
        (
            ("promote", "--model", "local-model", "--version", "99"),
            f"--version: local-model has no version 99 (versions: {v1}, {v2})",
        ),
        (("rollback", "--model", "nope"), "--model: no registered model 'nope'"),
        (("history", "--model", "nope"), "--model: no registered model 'nope'"),
    ]:
        proc = local(*args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr[-800:])
        assert "Traceback" not in proc.stderr
    with LocalMlflowServer(state) as server:  # and the server sees what they wrote
        client = registry_client(server.uri)
        assert current_champion(client, "local-model") == v1
        run_id = client.get_model_version("local-model", v2).run_id
        assert len(client.list_artifacts(run_id, "gate/decisions")) == 2
