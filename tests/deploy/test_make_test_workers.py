"""``make test``/``make test-fast`` spread the suite over pytest-xdist workers (one per CPU the
process may use, at most 4; ``TEST_WORKERS`` overrides), and the modules whose module-scoped
fixtures are costly stay on one worker (``--dist loadgroup`` + an ``xdist_group`` mark)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Modules whose module-scoped fixtures train, serve or start servers: split across workers,
#: each worker would build them again.
GROUPED = [
    "tests/integration/test_serving.py",
    "tests/integration/test_kserve.py",
    "tests/integration/test_mlflow_auth.py",
    "tests/integration/test_gate_server.py",
    "tests/deploy/test_store_accounts.py",
]


def _dry_run(target: str, *args: str) -> str:
    out = subprocess.run(
        ["make", "-s", "-n", target, *args], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    return next(line for line in out.splitlines() if " -m pytest" in line)


@pytest.mark.parametrize("target", ["test", "test-fast"])
def test_make_test_runs_on_one_worker_per_usable_cpu_at_most_four(target):
    workers = min(len(os.sched_getaffinity(0)), 4)
    assert re.search(rf" -n {workers} --dist loadgroup( |$)", _dry_run(target))
    assert " -n 0 --dist loadgroup" in _dry_run(target, "TEST_WORKERS=0")


@pytest.mark.parametrize("module", GROUPED)
def test_costly_module_fixtures_are_built_on_one_worker(module):
    text = (ROOT / module).read_text()
    assert re.search(r'^pytestmark = .*pytest\.mark\.xdist_group\("[\w-]+"\)', text, re.M)
    assert 'scope="module"' in text
