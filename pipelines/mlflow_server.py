"""A real ``mlflow server`` on loopback for local runs and tests.

SQLite backend store and a local artifact root under a state directory (``.qubeflow/`` by
default), artifacts proxied by the server (clients need no storage credentials). Started
with one worker (start-up is 7-25 s on 2 cores), ready when ``/health`` answers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from urllib.parse import urlparse

from components import processes

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mlflow_executable() -> list[str]:
    exe = Path(sys.executable).with_name("mlflow")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("mlflow")
    return [found] if found else [sys.executable, "-m", "mlflow"]


class LocalMlflowServer:
    """``with LocalMlflowServer(state_dir) as server: server.uri`` — started, healthy, stopped."""

    def __init__(
        self,
        state_dir: str | Path,
        *,
        port: int | None = None,
        start_timeout_s: float = 120.0,
        app_name: str = "",
        env: dict[str, str] | None = None,
        artifacts_destination: str = "",
    ) -> None:
        """``app_name`` e.g. ``basic-auth`` (MLflow's authentication app); ``env`` is added
        to the server's environment (e.g. ``MLFLOW_AUTH_CONFIG_PATH``);
        ``artifacts_destination`` the store the server proxies artifacts to (default the state
        folder's ``mlartifacts/``; e.g. ``s3://bucket/prefix`` with ``MLFLOW_S3_ENDPOINT_URL``
        in ``env``)."""
        self.app_name = app_name
        self.artifacts_destination = artifacts_destination
        self.extra_env = dict(env or {})
        self.state_dir = Path(state_dir).resolve()
        self.port = port or free_port()
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.state_dir / "mlflow-server.log"

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backend_store_uri(self) -> str:
        return f"sqlite:///{self.state_dir / 'mlflow.db'}"

    def start(self, *, wait: bool = True) -> LocalMlflowServer:
        """Start the server; with ``wait=False`` return at once (the caller overlaps the
        start-up with other work and :meth:`wait_healthy` later, or lets its clients wait)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        artifacts = self.artifacts_destination or str(self.state_dir / "mlartifacts")
        cmd = [
            *_mlflow_executable(),
            "server",
            "--backend-store-uri",
            self.backend_store_uri,
            "--artifacts-destination",
            artifacts,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            *(["--app-name", self.app_name] if self.app_name else []),
        ]
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env.update(self.extra_env)
        # MLflow 3 also starts job-queue consumers (huey, ~5 processes) for server-side jobs;
        # a local pipeline run never submits one, so they only cost start-up time and memory.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        log.info("starting mlflow server on %s (store %s)", self.uri, self.backend_store_uri)
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with code {self.process.returncode}; see {self.log_path}"
                )
            if self.healthy():
                log.info("mlflow server ready at %s", self.uri)
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"mlflow server did not become healthy within "
            f"{self.start_timeout_s:.0f} s; see {self.log_path}"
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            children = processes.children(self.process.pid)
            os.killpg(self.process.pid, signal.SIGTERM)
            # `mlflow server` forwards the signal to uvicorn, the process that serves, and
            # waits for it. Once uvicorn has shut down, the CLI process only tears down its
            # interpreter (~0.7 s for MLflow's import tree) and writes nothing: it is stopped
            # then rather than waited for.
            if children and processes.wait_gone(children, timeout_s=15):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        log.info("mlflow server on %s stopped", self.uri)

    def __enter__(self) -> LocalMlflowServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def direct_local_store(state_dir: str | Path) -> Iterator[str]:
    """The local store without starting its server (registry commands in ~2 s instead of
    ~20): yields its ``sqlite:`` URI, and for the block resolves the ``mlflow-artifacts:``
    URIs the server hands out to the folder it serves them from."""
    from mlflow.store.artifact import artifact_repository_registry as registry
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    root = Path(state_dir).resolve() / "mlartifacts"

    def local(
        artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
    ) -> LocalArtifactRepository:
        path = urlparse(artifact_uri).path.lstrip("/")
        return LocalArtifactRepository(str(root / path), tracking_uri, registry_uri)

    # The registry's own plug-in point (what the `mlflow.artifact_repository` entry points
    # call), restored after the block.
    repos = registry._artifact_repository_registry
    saved = repos.get_registered_artifact_repositories().get("mlflow-artifacts")
    repos.register("mlflow-artifacts", local)
    try:
        yield f"sqlite:///{Path(state_dir).resolve() / 'mlflow.db'}"
    finally:
        repos.register("mlflow-artifacts", saved)
