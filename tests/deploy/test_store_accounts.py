"""MLflow's own, least-privilege accounts in its stores (manifests/base/stores/), checked with
real parts where they run here:

- PostgreSQL: a real server (initdb, a free loopback port) runs the repo's mlflow-role.sql
  with the command line and env of the Job qubeflow-postgres-roles; the role then has no
  attribute but LOGIN, runs MLflow's migrations and store, cannot create databases or roles or
  read pg_authid, no other role may connect to its database, and a second run rotates the
  password (names and passwords that need quoting prove the quoting).
- MinIO: the repo's policy is evaluated by moto's IAM policy engine (S3 requests signed with
  a user's key and authorized against its policies): MLflow's bucket only. The Job's script
  runs with a stand-in ``mc`` that records what mc would be given: the root keys in
  ``MC_HOST_`` only, the user's secret key on stdin only.
- The rendered overlays: only the stores and their accounts Jobs get the stores' admin
  Secrets; the Jobs run the repo's files; no secret on a command line.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from pipelines.mlflow_server import free_port
from tests.deploy.test_manifests import OVERLAYS, containers, pod_specs, render

# One worker starts the PostgreSQL server (module-scoped) once for all of its tests.
pytestmark = pytest.mark.xdist_group("store-accounts")
ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "manifests" / "base"
STORES = BASE / "stores"
ROLE_SQL = STORES / "mlflow-role.sql"
ACCOUNTS_SH = STORES / "minio-accounts.sh"
POLICY_JSON = STORES / "mlflow-artifacts-policy.json"
BUCKET = "mlflow-artifacts"
BUCKET_ACTIONS = {"s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"}
OBJECT_ACTIONS = {
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
}
#: Values that need quoting everywhere they go (SQL identifiers, literals, URIs, \connect).
PG_ADMIN, PG_ADMIN_PASSWORD = "pg admin", "adm'in pass"
MLFLOW_ROLE, MLFLOW_DB = 'ml "flow', "mlflow store's db"

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (for `kubectl kustomize`) is not installed"
)


def base_object(file: str, kind: str, name: str) -> dict:
    """An object as written in manifests/base (what the overlays render, images aside)."""
    docs = [d for d in yaml.safe_load_all((BASE / file).read_text()) if d]
    [obj] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return obj


def job_process(job: dict, secrets: dict[str, dict[str, str]], **literals: str):
    """The Job's command line and environment as the kubelet would give them: secretKeyRef
    values from ``secrets``, literal values (``literals`` override some: the cluster's
    Service names become loopback), and its ConfigMap mount mapped onto stores/ (the
    ConfigMap holds those files, checked below)."""
    [c] = job["spec"]["template"]["spec"]["containers"]
    env = {}
    for e in c["env"]:
        if "valueFrom" in e:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets[ref["name"]][ref["key"]]
        else:
            env[e["name"]] = e["value"]
    env.update(literals)
    [mount] = [m for m in c["volumeMounts"] if m["name"] == "script"]
    argv = [a.replace(mount["mountPath"], str(STORES)) for a in c["command"] + c.get("args", [])]
    return argv, env


# --- PostgreSQL --------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    candidates = [Path(found).parent] if found else []
    candidates += sorted(
        (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    return next((d for d in candidates if (d / "initdb").exists()), None)


def _psql_major() -> int:
    if shutil.which("psql") is None:
        return 0
    out = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout
    match = re.search(r"(\d+)\.", out)
    return int(match.group(1)) if match else 0


@dataclass
class Postgres:
    port: int
    log: Path

    def connect(self, user: str, password: str, dbname: str = "postgres"):
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=user,
            password=password,
            dbname=dbname,
            connect_timeout=10,
        )
        conn.autocommit = True
        return conn

    def admin(self, sql: str, *params):
        conn = self.connect(PG_ADMIN, PG_ADMIN_PASSWORD)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A throw-away PostgreSQL server on loopback (scram-sha-256, every statement logged),
    stopped and removed afterwards. postgres refuses to run as root: as root it runs as the
    ``postgres`` user, in a directory that user owns."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    if _psql_major() < 15:
        pytest.skip("psql >= 15 (\\getenv, which the Job's script uses) is not installed")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server")
        prefix = ["runuser", "-u", "postgres", "--"]
    workdir = Path(tempfile.mkdtemp(prefix="qubeflow-pg-"))
    data, log, pwfile = workdir / "data", workdir / "server.log", workdir / "pwfile"
    try:
        pwfile.write_text(PG_ADMIN_PASSWORD + "\n")
        if owner is not None:
            for path in (workdir, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            [
                *prefix,
                *(str(bindir / "initdb"), "-D", str(data), "-U", PG_ADMIN),
                *(f"--pwfile={pwfile}", "-A", "scram-sha-256", "-E", "UTF8", "--locale=C"),
                *("--no-sync", "--no-instructions"),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        pwfile.unlink()
        port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=off"
            " -c log_statement=all"  # so the tests can check no password is logged
        )
        subprocess.run(
            [
                *prefix,
                *(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log)),
                *("-w", "-t", "120", "start"),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
        try:
            yield Postgres(port, log)
        finally:
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=120,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Role:
    name: str
    password: str
    db: str


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def run_roles_job(pg: Postgres, name: str, password: str, db: str):
    """The Job qubeflow-postgres-roles, its psql command line and env, against ``pg``."""
    secrets = {
        "qubeflow-postgres-admin": {
            "POSTGRES_USER": PG_ADMIN,
            "POSTGRES_PASSWORD": PG_ADMIN_PASSWORD,
        },
        "qubeflow-mlflow-db": {
            "POSTGRES_USER": name,
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": db,
        },
    }
    job = base_object("postgres.yaml", "Job", "qubeflow-postgres-roles")
    argv, env = job_process(job, secrets, PGHOST="127.0.0.1", PGPORT=str(pg.port))
    assert not [a for a in argv if PG_ADMIN_PASSWORD in a or (password and password in a)]
    return subprocess.run(
        argv,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def role(postgres: Postgres) -> Role:
    role = Role(MLFLOW_ROLE, "it's a pass word", MLFLOW_DB)
    result = run_roles_job(postgres, role.name, role.password, role.db)
    assert result.returncode == 0, result.stderr
    return role


def test_the_role_has_login_and_no_other_attribute_and_owns_its_database(postgres, role):
    [attrs] = postgres.admin(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication,"
        " rolbypassrls FROM pg_roles WHERE rolname = %s",
        role.name,
    )
    assert attrs == (True, False, False, False, False, False)
    [(owner, acl)] = postgres.admin(
        "SELECT pg_get_userbyid(datdba), datacl::text[] FROM pg_database WHERE datname = %s",
        role.db,
    )
    assert owner == role.name
    assert not [entry for entry in acl if entry.startswith("=")]  # nothing granted to PUBLIC
    conn = postgres.connect(role.name, role.password, role.db)
    with conn.cursor() as cur:
        cur.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'")
        assert cur.fetchone()[0] == '"ml ""flow"'
        cur.execute("SELECT has_schema_privilege('public', 'CREATE')")
        assert cur.fetchone() == (True,)
    conn.close()


@pytest.mark.slow
def test_mlflow_migrates_and_uses_its_database_as_the_role(postgres, role, monkeypatch):
    """What the server does at start, as the role: MLflow's migrations (`mlflow db upgrade`,
    password from PGPASSWORD as in the Deployment), the auth app's migrations in the same
    database (basic_auth.ini's database_uri), then the tracking store."""
    uri = (
        f"postgresql+psycopg2://{quote(role.name, safe='')}@127.0.0.1:{postgres.port}"
        f"/{quote(role.db, safe='')}"
    )
    mlflow = Path(sys.executable).with_name("mlflow")
    result = subprocess.run(
        [str(mlflow), "db", "upgrade", uri],
        env={**os.environ, "PGPASSWORD": role.password},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    import sqlalchemy
    from mlflow.entities import Metric
    from mlflow.server.auth.db.utils import migrate
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    monkeypatch.setenv("PGPASSWORD", role.password)
    engine = sqlalchemy.create_engine(uri)
    try:
        migrate(engine, "head")
    finally:
        engine.dispose()
    store = SqlAlchemyStore(uri, f"s3://{BUCKET}")
    try:
        experiment = store.create_experiment("qubeflow-retraining")
        run = store.create_run(experiment, "gate", 0, [], "run")
        store.log_metric(run.info.run_id, Metric("accuracy", 0.9, 0, 0))
        assert store.get_run(run.info.run_id).data.metrics == {"accuracy": 0.9}
    finally:
        store.engine.dispose()
    conn = postgres.connect(role.name, role.password, role.db)
    with conn.cursor() as cur:
        cur.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")
        tables = dict(cur.fetchall())
    conn.close()
    assert {"experiments", "runs", "metrics", "registered_models", "users"} <= set(tables)
    assert set(tables.values()) == {role.name}


def test_the_role_cannot_create_databases_or_roles_or_read_pg_authid(postgres, role):
    import psycopg2.errors

    conn = postgres.connect(role.name, role.password, role.db)
    try:
        for sql in (
            "CREATE DATABASE another_db",
            "CREATE ROLE another_role",
            "SELECT rolpassword FROM pg_authid",
            "ALTER ROLE CURRENT_USER CREATEDB",
            f"SET ROLE {quote_ident(PG_ADMIN)}",
            "COPY (SELECT 1) TO PROGRAM 'true'",
        ):
            with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(sql)
    finally:
        conn.close()
    assert not postgres.admin("SELECT FROM pg_database WHERE datname = 'another_db'")
    assert not postgres.admin("SELECT FROM pg_roles WHERE rolname = 'another_role'")


def test_no_other_role_may_connect_to_the_mlflow_database(postgres, role):
    import psycopg2

    postgres.admin("CREATE ROLE other_login LOGIN PASSWORD 'other pw'")
    try:
        postgres.connect("other_login", "other pw").close()  # it logs in elsewhere...
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            postgres.connect("other_login", "other pw", role.db)  # ...but not here
    finally:
        postgres.admin("DROP ROLE other_login")


def test_a_second_run_re_applies_everything_and_rotates_the_password(postgres, role):
    import psycopg2

    # drift the Job must undo: an attribute granted by hand, CONNECT granted to PUBLIC
    postgres.admin(f"ALTER ROLE {quote_ident(role.name)} CREATEDB")
    postgres.admin(f"GRANT CONNECT ON DATABASE {quote_ident(role.db)} TO PUBLIC")
    old, new = role.password, "a new 'pass' word"
    result = run_roles_job(postgres, role.name, new, role.db)
    assert result.returncode == 0, result.stderr
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        postgres.connect(role.name, old, role.db)
    postgres.connect(role.name, new, role.db).close()
    role.password = new
    [(createdb,)] = postgres.admin("SELECT rolcreatedb FROM pg_roles WHERE rolname = %s", role.name)
    assert createdb is False
    [(acl,)] = postgres.admin("SELECT datacl::text[] FROM pg_database WHERE datname = %s", role.db)
    assert not [entry for entry in acl if entry.startswith("=")]
    # and once more, nothing changed: still no error
    again = run_roles_job(postgres, role.name, new, role.db)
    assert again.returncode == 0, again.stderr
    postgres.connect(role.name, new, role.db).close()
    # the server logs every statement, but not the ones that carry the passwords
    log = postgres.log.read_text(errors="replace")
    assert "log_statement" in log  # statement logging was on while the script ran
    for password in (old, new):  # as given, or as an SQL literal would carry it
        assert password not in log and password.replace("'", "''") not in log


def test_the_script_refuses_what_would_misfire(postgres, role):
    for name, password, db in (
        (PG_ADMIN, "some pw", "somedb"),  # the superuser would strip itself
        (role.name, "", role.db),  # an empty password
        (role.name, "some pw", "postgres"),  # a system database
        (role.name, "some pw", 'a"b'),  # \connect would strip the quote
        (role.name, "some pw", "host=elsewhere"),  # \connect would read a connection string
    ):
        result = run_roles_job(postgres, name, password, db)
        assert result.returncode == 3, (name, db, result.stderr)
        assert "MLflow role not set up" in result.stderr
    [(superuser,)] = postgres.admin("SELECT rolsuper FROM pg_roles WHERE rolname = %s", PG_ADMIN)
    assert superuser is True
    postgres.connect(role.name, role.password, role.db).close()  # its password is unchanged


# --- MinIO -------------------------------------------------------------------------------


def test_the_policy_file_allows_the_artifact_bucket_only():
    policy = json.loads(POLICY_JSON.read_text())
    assert policy["Version"] == "2012-10-17"
    for statement in policy["Statement"]:  # no Deny to reason about, no NotAction/Condition
        assert statement["Effect"] == "Allow"
        assert set(statement) == {"Sid", "Effect", "Action", "Resource"}
    grants = {
        (resource, action)
        for s in policy["Statement"]
        for resource in s["Resource"]
        for action in s["Action"]
    }
    assert grants == {(f"arn:aws:s3:::{BUCKET}", a) for a in BUCKET_ACTIONS} | {
        (f"arn:aws:s3:::{BUCKET}/*", a) for a in OBJECT_ACTIONS
    }
    # the bucket the server writes to and the Job creates
    mlflow = base_object("mlflow.yaml", "Deployment", "qubeflow-mlflow")
    [server] = mlflow["spec"]["template"]["spec"]["containers"]
    args = server["args"]
    assert args[args.index("--artifacts-destination") + 1] == f"s3://{BUCKET}"
    assert re.search(rf"^BUCKET={BUCKET}$", ACCOUNTS_SH.read_text(), re.M)


def test_an_iam_policy_engine_gives_the_policy_mlflows_bucket_and_nothing_else(monkeypatch):
    """Once ``enable_iam_authentication`` is on, moto checks each S3 request's signature and
    authorizes it against the signing user's IAM policies (the set-up before runs as root)."""
    import boto3
    from botocore.exceptions import ClientError
    from moto import mock_aws
    from moto.core import enable_iam_authentication

    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        root = boto3.client("s3")
        for bucket in (BUCKET, "qubeflow-datasets", f"{BUCKET}-old"):
            root.create_bucket(Bucket=bucket)
        root.put_object(Bucket="qubeflow-datasets", Key="train.csv", Body=b"a,b\n1,2\n")
        iam = boto3.client("iam")
        arn = iam.create_policy(PolicyName=BUCKET, PolicyDocument=POLICY_JSON.read_text())[
            "Policy"
        ]["Arn"]
        keys = {}
        for user in ("mlflow", "nobody"):  # nobody: no policy (the allows are the policy's)
            iam.create_user(UserName=user)
            access = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = {
                "aws_access_key_id": access["AccessKeyId"],
                "aws_secret_access_key": access["SecretAccessKey"],
            }
        iam.attach_user_policy(UserName="mlflow", PolicyArn=arn)

        with enable_iam_authentication():
            s3 = boto3.client("s3", **keys["mlflow"])
            # what MLflow's S3 artifact repository does: put, list, get, delete, multipart
            key = "1/0123abcd/artifacts/model/model.pkl"
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"model")
            assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"model"
            s3.head_object(Bucket=BUCKET, Key=key)
            listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="1/")["Contents"]
            assert [o["Key"] for o in listed] == [key]
            s3.get_bucket_location(Bucket=BUCKET)
            big = "1/0123abcd/artifacts/big.bin"
            upload = s3.create_multipart_upload(Bucket=BUCKET, Key=big)["UploadId"]
            part = s3.upload_part(Bucket=BUCKET, Key=big, UploadId=upload, PartNumber=1, Body=b"x")
            s3.list_parts(Bucket=BUCKET, Key=big, UploadId=upload)
            s3.list_multipart_uploads(Bucket=BUCKET)
            s3.complete_multipart_upload(
                Bucket=BUCKET,
                Key=big,
                UploadId=upload,
                MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
            )
            aborted = s3.create_multipart_upload(Bucket=BUCKET, Key=big + ".2")["UploadId"]
            s3.abort_multipart_upload(Bucket=BUCKET, Key=big + ".2", UploadId=aborted)
            s3.delete_object(Bucket=BUCKET, Key=key)

            nobody = boto3.client("s3", **keys["nobody"])
            denied = {
                "create a bucket": lambda: s3.create_bucket(Bucket="mlflow-new"),
                "list the buckets": s3.list_buckets,
                "read another bucket": lambda: s3.get_object(
                    Bucket="qubeflow-datasets", Key="train.csv"
                ),
                "write another bucket": lambda: s3.put_object(
                    Bucket="qubeflow-datasets", Key="x", Body=b"x"
                ),
                "list another bucket": lambda: s3.list_objects_v2(Bucket="qubeflow-datasets"),
                "a bucket whose name starts alike": lambda: s3.put_object(
                    Bucket=f"{BUCKET}-old", Key="x", Body=b"x"
                ),
                "delete its bucket": lambda: s3.delete_bucket(Bucket=BUCKET),
                "set its bucket's policy": lambda: s3.put_bucket_policy(
                    Bucket=BUCKET, Policy=POLICY_JSON.read_text()
                ),
                "make an object public": lambda: s3.put_object_acl(
                    Bucket=BUCKET, Key=big, ACL="public-read"
                ),
                "a user without the policy": lambda: nobody.put_object(
                    Bucket=BUCKET, Key="x", Body=b"x"
                ),
            }
            for what, call in denied.items():
                with pytest.raises(ClientError) as error:
                    call()
                assert error.value.response["Error"]["Code"] == "AccessDenied", what

        names = {b["Name"] for b in root.list_buckets()["Buckets"]}
        assert names == {BUCKET, "qubeflow-datasets", f"{BUCKET}-old"}
        remaining = root.list_objects_v2(Bucket=BUCKET)["Contents"]
        assert [o["Key"] for o in remaining] == [big]
        assert [o["Key"] for o in root.list_objects_v2(Bucket="qubeflow-datasets")["Contents"]] == [
            "train.csv"
        ]


FAKE_MC = """#!{python}
# A stand-in for mc: records its argv, the alias's MC_HOST_ variable and its stdin.
import json, os, sys
with open(os.environ["FAKE_MC_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "host": os.environ.get("MC_HOST_qubeflow"),
                          "stdin": sys.stdin.read()}}) + "\\n")
sys.exit(1 if sys.argv[1:2] == [os.environ.get("FAKE_MC_FAIL")] else 0)
"""
#: mc's own parsing of MC_HOST_<alias> (cmd/config.go, parseEnvURLStr, at the pinned
#: release): regular expressions, no URL-decoding; the one with a session token first.
MC_HOST_KEY_TOKENS = re.compile(r"^(https?://)(.*?):(.*?):(.*)@(.*?)$")
MC_HOST_KEYS = re.compile(r"^(https?://)(.*?):(.*)@(.*?)$")
SHELLS = [s for s in ("dash", "bash") if shutil.which(s)]  # the mc image's sh is bash


def run_accounts_job(tmp_path: Path, shell: str, secrets: dict, fail: str = ""):
    """The Job qubeflow-minio-accounts with ``mc`` replaced, and nothing else on PATH: the
    script may run only mc (and shell builtins)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    mc = bindir / "mc"
    mc.write_text(FAKE_MC.format(python=sys.executable))
    mc.chmod(0o755)
    log = tmp_path / "mc.jsonl"
    log.unlink(missing_ok=True)
    job = base_object("minio.yaml", "Job", "qubeflow-minio-accounts")
    argv, env = job_process(job, secrets)
    assert argv[0] == "/bin/sh"
    argv[0] = shutil.which(shell)
    env |= {"PATH": str(bindir), "FAKE_MC_LOG": str(log), "FAKE_MC_FAIL": fail}
    result = subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def minio_secrets(root_user="qubeflow-root", root_password="r00t/pass@word", access="mlflow"):
    return {
        "qubeflow-minio": {"MINIO_ROOT_USER": root_user, "MINIO_ROOT_PASSWORD": root_password},
        "qubeflow-mlflow-s3": {
            "AWS_ACCESS_KEY_ID": access,
            "AWS_SECRET_ACCESS_KEY": "mlflow-s3cr3t key",
        },
    }


@pytest.mark.parametrize("shell", SHELLS)
def test_the_minio_job_gives_mc_the_keys_by_env_and_stdin_only(tmp_path, shell):
    secrets = minio_secrets()
    result, calls = run_accounts_job(tmp_path, shell, secrets)
    assert result.returncode == 0, result.stderr
    assert [c["argv"] for c in calls] == [
        ["mb", "--ignore-existing", f"qubeflow/{BUCKET}"],
        ["admin", "policy", "create", "qubeflow", BUCKET, str(POLICY_JSON)],
        ["admin", "user", "add", "qubeflow", "mlflow"],  # no SECRETKEY: mc reads a line
        ["admin", "policy", "attach", "qubeflow", BUCKET, "--user", "mlflow"],
    ]
    assert [c["stdin"] for c in calls] == ["", "", "mlflow-s3cr3t key\n", ""]
    root = secrets["qubeflow-minio"]
    for call in calls:
        assert (
            call["host"]
            == f"http://qubeflow-root:{root['MINIO_ROOT_PASSWORD']}@qubeflow-minio:9000"
        )
        # what mc makes of it: the root keys, no session token, the Service
        assert not MC_HOST_KEY_TOKENS.match(call["host"])
        _, user, password, host = MC_HOST_KEYS.match(call["host"]).groups()
        assert (user, password, host) == ("qubeflow-root", "r00t/pass@word", "qubeflow-minio:9000")
        for secret in ("r00t/pass@word", "mlflow-s3cr3t key"):
            assert not [a for a in call["argv"] if secret in a]
    assert "r00t" not in result.stdout + result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr


@pytest.mark.parametrize("shell", SHELLS)
def test_the_minio_job_refuses_keys_mc_would_misread_and_stops_at_a_failure(tmp_path, shell):
    for secrets in (
        minio_secrets(root_password="with:colon"),  # mc would read a session token
        minio_secrets(root_user="root:x"),
        minio_secrets(access="qubeflow-root"),  # MLflow's user must not be the root user
        minio_secrets(root_password=""),
    ):
        result, calls = run_accounts_job(tmp_path, shell, secrets)
        assert result.returncode != 0 and calls == [], secrets
    result, calls = run_accounts_job(tmp_path, shell, minio_secrets(), fail="mb")
    assert result.returncode != 0 and [c["argv"][0] for c in calls] == ["mb"]


# --- The rendered overlays ---------------------------------------------------------------


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (for `kubectl kustomize`) is not installed")
    return render(request.param)


def _secrets_of(container: dict) -> set[str]:
    names = {e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            names.add(ref["name"])
    return names


@needs_kubectl
def test_each_stores_admin_secret_reaches_only_the_store_and_its_accounts_job(rendered):
    users = defaultdict(set)
    for name, pod in pod_specs(rendered):
        for c in containers(pod):
            for secret in _secrets_of(c):
                users[secret].add(name)
    assert users["qubeflow-postgres-admin"] == {"qubeflow-postgres", "qubeflow-postgres-roles"}
    assert users["qubeflow-minio"] == {"qubeflow-minio", "qubeflow-minio-accounts"}
    assert users["qubeflow-mlflow-db"] == {"qubeflow-mlflow", "qubeflow-postgres-roles"}
    assert users["qubeflow-mlflow-s3"] == {"qubeflow-mlflow", "qubeflow-minio-accounts"}
    accounts = [o for o in rendered if o["kind"] == "ServiceAccount"]
    assert not [
        a
        for a in accounts
        if {"qubeflow-minio", "qubeflow-postgres-admin"} & {s["name"] for s in a.get("secrets", [])}
    ]
    [server] = [p for n, p in pod_specs(rendered) if n == "qubeflow-mlflow"]
    assert [c["name"] for c in server["initContainers"]] == ["auth-config"]  # no bucket maker
    [mlflow] = server["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in mlflow["env"] if "valueFrom" in e}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert refs[key] == {"name": "qubeflow-mlflow-s3", "key": key}
    assert refs["PGPASSWORD"] == {"name": "qubeflow-mlflow-db", "key": "POSTGRES_PASSWORD"}


@needs_kubectl
def test_the_jobs_run_the_repos_scripts(rendered):
    configmaps = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "ConfigMap"}
    scripts = {
        "qubeflow-postgres-roles": (ROLE_SQL, [ROLE_SQL]),
        "qubeflow-minio-accounts": (ACCOUNTS_SH, [ACCOUNTS_SH, POLICY_JSON]),
    }
    pods = dict(pod_specs(rendered))
    for job, (script, files) in scripts.items():
        assert configmaps[job]["data"] == {f.name: f.read_text() for f in files}
        pod = pods[job]
        [c] = pod["containers"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        [mount] = [m for m in c["volumeMounts"] if "configMap" in volumes[m["name"]]]
        assert volumes[mount["name"]]["configMap"]["name"] == job
        assert mount["readOnly"] is True
        assert f"{mount['mountPath']}/{script.name}" in c["command"] + c.get("args", [])
    [roles] = pods["qubeflow-postgres-roles"]["containers"]
    assert roles["command"][:1] == ["psql"] and "ON_ERROR_STOP=1" in roles["command"]
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in roles["env"]}
    getenv = dict(re.findall(r"^\\getenv (\w+) (\w+)$", ROLE_SQL.read_text(), re.M))
    assert {env[var]["key"] for var in getenv.values()} == {
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
    }
    assert {env[var]["name"] for var in getenv.values()} == {"qubeflow-mlflow-db"}
    [postgres] = pods["qubeflow-postgres"]["containers"]
    assert roles["image"] == postgres["image"]  # its psql is the server's release
    [mc] = pods["qubeflow-minio-accounts"]["containers"]
    assert re.fullmatch(r"minio/mc:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", mc["image"])


@needs_kubectl
def test_no_secret_reaches_a_command_line(rendered):
    """argv is readable by every process on the node: no Secret-sourced credential is
    expanded into one, and the store Jobs expand nothing at all."""
    for name, pod in pod_specs(rendered):
        for c in containers(pod):
            argv = " ".join([*c.get("command", []), *c.get("args", [])])
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and re.search(r"PASSWORD|SECRET|TOKEN|KEY", ref["key"] + env["name"]):
                    assert f"$({env['name']})" not in argv, f"{name}/{c['name']}"
            if name in ("qubeflow-postgres-roles", "qubeflow-minio-accounts"):
                assert "$(" not in argv, f"{name}/{c['name']}"
    # and the scripts pass nothing secret to a command: psql gets the passwords from env
    sql = ROLE_SQL.read_text()
    assert "\\!" not in sql and "\\setenv" not in sql and "PASSWORD :'mlflow_password'" in sql
