"""The MLflow accounts of a deployment with MLflow's own authentication
(``mlflow server --app-name basic-auth``), created idempotently by an admin:

- ``gate`` — the register/gate pipeline steps: MANAGE on the retraining experiment (log runs,
  and delete the run of a publish it rolls back),
  MANAGE on the production registered models (versions, aliases, the gate's history tags);
- ``trainer`` — anyone who logs experiment runs (notebooks, other jobs): EDIT on the
  experiment, READ (the server's ``default_permission``) on every registered model, so it
  cannot move an alias;
- everyone else (UI users): the default READ.

``python -m pipelines.mlflow_accounts --tracking-uri URI --experiment E --model M`` (the
``qubeflow-mlflow-accounts`` Job). The admin's credentials are MLflow's own
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``; each account's password comes from
``QUBEFLOW_<ACCOUNT>_PASSWORD`` — all from Kubernetes Secrets, never arguments or logs.
See docs/mlflow-auth.md for what MLflow's permission model can and cannot separate.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

from components.errors import ConfigError, QubeflowError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Account:
    username: str
    experiment_permission: str  # on the retraining experiment
    model_permission: str | None  # on each production model (None: the default READ)

    @property
    def password_env(self) -> str:
        return f"QUBEFLOW_{self.username.upper()}_PASSWORD"


ACCOUNTS = (
    # MANAGE on the experiment too: a publish that fails deletes the run it made (rollback)
    Account("gate", "MANAGE", "MANAGE"),
    Account("trainer", "EDIT", None),
)


def _password(account: Account, env: dict[str, str]) -> str:
    value = env.get(account.password_env, "")
    if len(value) < 12:
        raise ConfigError(
            f"${account.password_env} must hold the {account.username!r} account's password "
            "(at least 12 characters)",
            field=account.password_env,
        )
    return value


def provision(
    tracking_uri: str,
    experiment: str,
    models: list[str],
    *,
    accounts: tuple[Account, ...] = ACCOUNTS,
    env: dict[str, str] | None = None,
) -> list[str]:
    """Create (or update the password of) each account and grant its permissions; create the
    experiment and registered models first if missing. Returns what was done."""
    from mlflow import MlflowClient
    from mlflow.server import get_app_client

    env = dict(os.environ if env is None else env)
    passwords = {a.username: _password(a, env) for a in accounts}  # all checked before writing
    auth: Any = get_app_client("basic-auth", tracking_uri=tracking_uri)
    admin = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    done = []
    exp = admin.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else admin.create_experiment(experiment)
    for name in models:
        try:
            admin.get_registered_model(name)
        except Exception:
            admin.create_registered_model(name)
            done.append(f"created registered model {name}")
    for account in accounts:
        try:
            auth.get_user(account.username)
            auth.update_user_password(account.username, passwords[account.username])
            done.append(f"updated {account.username}")
        except Exception:
            auth.create_user(account.username, passwords[account.username])
            done.append(f"created {account.username}")
        grants = [("experiment", exp_id, account.experiment_permission)]
        if account.model_permission:
            grants += [("registered_model", m, account.model_permission) for m in models]
        for resource_type, resource_id, permission in grants:
            _grant(auth, account.username, resource_type, resource_id, permission)
            done.append(f"{account.username}: {permission} on {resource_type} {resource_id}")
    return done


def _grant(auth: Any, user: str, resource_type: str, resource_id: str, permission: str) -> None:
    """Grant, or replace an existing grant of another level (idempotent)."""
    from mlflow.exceptions import MlflowException

    try:
        auth.grant_user_permission(user, resource_type, resource_id, permission)
    except MlflowException as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
            raise
        auth.revoke_user_permission(user, resource_type, resource_id)
        auth.grant_user_permission(user, resource_type, resource_id, permission)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m pipelines.mlflow_accounts")
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--experiment", default="qubeflow-retraining")
    parser.add_argument("--model", action="append", default=[], help="repeatable")
    args = parser.parse_args(argv)
    try:
        for line in provision(
            args.tracking_uri, args.experiment, args.model or ["qubeflow-classifier"]
        ):
            log.info("%s", line)
    except QubeflowError as exc:
        print(f"mlflow_accounts: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
