"""Container images: Dockerfiles lint clean and follow the rules (multi-stage, pinned only in
pyproject.toml, non-root, no secrets, BASE_IMAGE), ``make images`` tags what the compiled
pipeline references, and — where buildah can run — the base image builds for real and runs a
real component entrypoint on a tiny dataset."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.config import PipelineConfig
from pipelines.image_build import BASE_DOCKERFILE, BOOTSTRAP_REF, QUANTUM_DOCKERFILE, ROOT, plan

DOCKERFILE_PATHS = [ROOT / BASE_DOCKERFILE, ROOT / QUANTUM_DOCKERFILE]


def test_dockerfiles_pass_hadolint():
    hadolint = Path(sys.executable).with_name("hadolint")
    proc = subprocess.run(
        [str(hadolint), "--no-color", *map(str, DOCKERFILE_PATHS)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", DOCKERFILE_PATHS, ids=lambda p: p.parent.name)
def test_dockerfile_rules(path):
    text = path.read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(froms) >= 2, "multi-stage"
    assert lines[0].startswith("ARG ") and ("BASE_IMAGE" in lines[0])
    final = text[text.rindex("\nFROM ") :]
    users = re.findall(r"^USER (\S+)", final, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert not re.search(r"==\d", text), "versions are pinned only in pyproject.toml"
    assert re.search(r'pip install --no-compile "\.\[', text)
    assert not re.search(r"(TOKEN|PASSWORD|SECRET|ACCESS_KEY)", text, re.I)
    # no compilers or package managers' build tools in the final stage
    assert not re.search(r"apt-get|gcc|build-essential", final)


def _compiled_images(env: dict[str, str], out: Path) -> set[str]:
    code = (
        "from pipelines.retraining import compile_pipeline; import sys; "
        f"print(compile_pipeline({str(out)!r}))"
    )
    path = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    ir = next(yaml.safe_load_all(Path(path).read_text()))
    images = {
        e["container"]["image"]
        for e in ir["deploymentSpec"]["executors"].values()
        if "{{" not in e["container"]["image"]
    }  # quantum tasks: the parameter below
    defaults = ir["root"]["inputDefinitions"]["parameters"]
    return images | {defaults["quantum_image"]["defaultValue"]}


def test_make_images_tags_match_the_compiled_pipeline(tmp_path):
    env = {"QUBEFLOW_IMAGE_REGISTRY": "registry.example/team", "QUBEFLOW_IMAGE_TAG": "1.2.3"}
    out = subprocess.run(
        [
            "make",
            "-s",
            "images",
            "IMAGES_ARGS=--dry-run",
            "REGISTRY=registry.example/team",
            "TAG=1.2.3",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    built = set(re.findall(r"-t (\S+)", out))
    assert built == {
        f"registry.example/team/qubeflow-{n}:1.2.3"
        for n in ("base", "quantum-qiskit", "quantum-pennylane", "serving")
    }
    compiled = _compiled_images(env, tmp_path)
    assert compiled <= built  # every image the pipeline runs is one make images builds
    assert "registry.example/team/qubeflow-base:1.2.3" in compiled


def test_build_plan_uses_the_chosen_builder_and_mirror():
    steps = plan(
        "buildah",
        ["base", "qiskit"],
        base_image="mirror.local/python:3.11",
        ca_bundle="/etc/ssl/certs/ca-certificates.crt",
    )
    assert [s.family for s in steps] == ["base", "qiskit"]  # quantum families after base
    cmd = steps[0].command
    assert cmd[:2] == ["buildah", "--storage-driver"] and "bud" in cmd
    assert "BASE_IMAGE=mirror.local/python:3.11" in cmd
    assert any(c.endswith(":/run/qubeflow-ca.crt:ro") for c in cmd)
    assert plan("podman", ["pennylane"])[0].command[:2] == ["podman", "build"]


# ---- the real build --------------------------------------------------------------------


def _why_no_build() -> str | None:
    if os.environ.get("QUBEFLOW_SKIP_IMAGE_BUILD"):
        return "QUBEFLOW_SKIP_IMAGE_BUILD is set"
    for tool in ("buildah", "debootstrap"):
        if not shutil.which(tool):
            return (
                f"{tool} is not installed (apt-get install buildah debootstrap; .ci/run "
                "does this when it runs as root)"
            )
    if os.geteuid() != 0:
        return "building with buildah (vfs, chroot isolation) needs root here"
    return None


def _executor_input(ir: dict, component: str, params: dict, out: str) -> dict:
    spec = ir["components"][f"comp-{component}"]
    artifacts = spec["outputDefinitions"].get("artifacts", {})
    return {
        "inputs": {"parameterValues": params},
        "outputs": {
            "artifacts": {
                name: {
                    "artifacts": [
                        {
                            "name": name,
                            "type": a["artifactType"],
                            "uri": f"{out}/{name}",
                            "metadata": {},
                        }
                    ]
                }
                for name, a in artifacts.items()
            },
            "outputFile": f"{out}/executor_output.json",
        },
    }


@pytest.mark.slow
@pytest.mark.skipif(_why_no_build() is not None, reason=_why_no_build() or "")
def test_base_image_builds_and_runs_a_component(tmp_path, breast_cancer):
    registry, tag = "localhost/qubeflow-test", "ci"
    env = {**os.environ, "QUBEFLOW_IMAGE_REGISTRY": registry, "QUBEFLOW_IMAGE_TAG": tag}
    ca = "/etc/ssl/certs/ca-certificates.crt"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.image_build",
            "--builder",
            "buildah",
            "--family",
            "base",
            "--bootstrap-base",
            *(["--ca-bundle", ca] if Path(ca).is_file() else []),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=2400,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    image = f"{registry}/qubeflow-base:{tag}"

    work = tmp_path / "work"
    (work / "out").mkdir(parents=True)
    breast_cancer.sample(120, random_state=1).to_csv(work / "tiny.csv", index=False)
    os.chmod(work, 0o777)
    os.chmod(work / "out", 0o777)
    ir = next(
        yaml.safe_load_all(
            (
                Path(
                    subprocess.run(
                        [
                            sys.executable,
                            "-c",
                            "from pipelines.retraining import compile_pipeline; "
                            f"print(compile_pipeline({str(tmp_path)!r}))",
                        ],
                        capture_output=True,
                        text=True,
                        env=env,
                        cwd=ROOT,
                        check=True,
                    ).stdout.strip()
                )
            ).read_text()
        )
    )
    container = ir["deploymentSpec"]["executors"]["exec-prepare-data"]["container"]
    assert container["image"] == image
    overrides = {
        "dataset": "/work/tiny.csv",
        "n_qubits": 3,
        "reps": 1,
        "min_samples_per_class": 5,
        "seed": 3,
    }
    # Every input the compiled component declares gets a value: the override above or
    # the pipeline's own default, so a new step parameter cannot silently break this test.
    declared = ir["components"]["comp-prepare-data"]["inputDefinitions"]["parameters"]
    params = {name: overrides.get(name, getattr(PipelineConfig(), name)) for name in declared}
    executor_input = json.dumps(_executor_input(ir, "prepare-data", params, "/work/out"))
    argv = [
        *container["command"],
        *[executor_input if a == "{{$}}" else a for a in container["args"]],
    ]
    store = ["buildah", "--storage-driver", "vfs"]
    ctr = subprocess.run(
        [*store, "from", image], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        run = subprocess.run(
            [
                *store,
                "run",
                "--isolation",
                "chroot",
                "--user",
                "10001:10001",
                "-v",
                f"{work}:/work",
                ctr,
                "--",
                *argv,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        commit = subprocess.run(
            [
                *store,
                "run",
                "--isolation",
                "chroot",
                ctr,
                "--",
                "sh",
                "-c",
                "echo $QUBEFLOW_GIT_COMMIT; id -u",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    finally:
        subprocess.run([*store, "rm", ctr], capture_output=True)
        # vfs layers are full copies: do not let repeated runs fill the disk
        subprocess.run([*store, "rmi", image, BOOTSTRAP_REF], capture_output=True)
        subprocess.run([*store, "rmi", "--prune"], capture_output=True)
    assert commit[1] == "10001" and commit[0] not in ("", "unknown")
    out = work / "out"
    assert (out / "train_data").exists() and (out / "preprocessor").exists()
    lineage = json.loads((out / "data_lineage").read_text())
    assert lineage["source"]["uri"] == "/work/tiny.csv"
    executor_output = json.loads((out / "executor_output.json").read_text())
    assert "artifacts" in executor_output  # the KFP executor wrote its output metadata
