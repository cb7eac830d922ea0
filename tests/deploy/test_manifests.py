"""The Kustomize manifests, offline: every overlay renders, every object validates against
the Kubernetes schemas (strict; KServe's custom resources, which have no schema there, field by
field against the Pod and Container schemas they embed), and the rendered objects follow the
deployment policy (pinned images, limits, Pod Security "restricted", no secret values,
ConfigMap keys that are pipeline parameters, the InferenceService serving the overlay's
champion.env)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.image_refs import BASE_IMAGE, image
from components.registry import kserve
from pipelines.config import PipelineConfig

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = sorted(p.name for p in (MANIFESTS / "overlays").iterdir() if p.is_dir())
K8S_VERSION = "1.32.0"  # the kubectl/Kustomize this is checked with; see manifests/README.md
SECRET_NAMES = {
    "qubeflow-ibm-quantum",
    "qubeflow-s3",
    "qubeflow-mlflow-db",
    "qubeflow-minio",
    "qubeflow-models-s3",
    "qubeflow-mlflow-auth",
    "qubeflow-mlflow-gate",
    "qubeflow-mlflow-trainer",
    "qubeflow-postgres-admin",
    "qubeflow-mlflow-s3",
}
#: KServe's custom resources (no schema in kubernetes-validate): checked by the tests below.
KSERVE_API = "serving.kserve.io/"
#: InferenceService fields of KServe's (not a Pod's): the predictor's and its model's.
PREDICTOR_FIELDS = {"model", "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric"}
MODEL_FIELDS = {"modelFormat", "protocolVersion", "runtime", "storageUri"}
SERVING_IMAGE = image("qubeflow-serving")

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (for `kubectl kustomize`) is not installed"
)


def render(overlay: str) -> list[dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(MANIFESTS / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> list[dict]:
    return render(request.param)


def pod_specs(objs: list[dict]) -> list[tuple[str, dict]]:
    out = []
    for o in objs:
        spec = o.get("spec", {})
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
            out.append((o["metadata"]["name"], spec["template"]["spec"]))
        elif o["kind"] == "CronJob":
            out.append((o["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]["spec"]))
        elif o["kind"] == "InferenceService":
            out.append((o["metadata"]["name"] + "-predictor", predictor_pod(o, objs)))
    return out


def predictor_pod(isvc: dict, objs: list[dict]) -> dict:
    """The predictor's Pod as KServe builds it: the predictor's Pod fields, and one container,
    the ServingRuntime's ``kserve-container`` with the model's Container fields over it (the
    storage initializer KServe injects is configured cluster-wide; see docs/serving.md)."""
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    [runtime] = [
        o
        for o in objs
        if o["kind"] == "ServingRuntime" and o["metadata"]["name"] == model["runtime"]
    ]
    [base] = runtime["spec"]["containers"]
    container = {**base, **{k: v for k, v in model.items() if k not in MODEL_FIELDS}}
    container["securityContext"] = {
        **base.get("securityContext", {}),
        **model.get("securityContext", {}),
    }
    pod = {k: v for k, v in predictor.items() if k not in PREDICTOR_FIELDS}
    return {**pod, "containers": [container]}


def containers(pod: dict) -> list[dict]:
    return pod.get("initContainers", []) + pod["containers"]


def test_overlays_exist():
    assert set(OVERLAYS) == {"dev", "prod"}


def test_every_object_validates_strictly(rendered):
    import kubernetes_validate

    assert len(rendered) > 10
    custom = [o for o in rendered if o["apiVersion"].startswith(KSERVE_API)]
    assert sorted(o["kind"] for o in custom) == ["InferenceService", "ServingRuntime"]
    for obj in rendered:
        if obj not in custom:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    broken = {**rendered[0], "spek": {}}  # the validator does catch unknown fields
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_images_are_pinned_and_ours_match_make_images(rendered):
    for name, pod in pod_specs(rendered):
        for c in containers(pod):
            image = c["image"]
            assert re.search(r":[\w][\w.-]*$|@sha256:", image), f"{name}: {image} has no tag"
            assert not image.endswith(":latest"), f"{name}: {image}"
            if "qubeflow-base" in image:
                assert image == BASE_IMAGE  # REGISTRY/TAG of make images/compile
            if "qubeflow-serving" in image:
                assert image == SERVING_IMAGE  # the same REGISTRY/TAG


def test_every_container_has_requests_and_limits(rendered):
    for name, pod in pod_specs(rendered):
        for c in containers(pod):
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(kind, {})), f"{name}/{c['name']}"


def test_pods_meet_the_restricted_pod_security_profile(rendered):
    namespaces = [o for o in rendered if o["kind"] == "Namespace"]
    assert namespaces and all(
        n["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        for n in namespaces
    )
    for name, pod in pod_specs(rendered):
        psc = pod.get("securityContext", {})
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
        assert all("hostPath" not in v for v in pod.get("volumes", []))
        for c in containers(pod):
            sc = c.get("securityContext", {})
            where = f"{name}/{c['name']}"
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, where
            assert sc.get("runAsUser", psc.get("runAsUser", 1)) != 0, where
            seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
            assert seccomp.get("type") in ("RuntimeDefault", "Localhost"), where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("privileged"), where


def test_root_filesystems_are_read_only_with_scratch_in_empty_dirs(rendered):
    """Every container of ours runs on a read-only root filesystem; what it writes goes to a
    mounted volume, with /tmp an emptyDir. KServe's predictor is left out: KServe builds its
    Pod and volumes (MLServer writes its metrics and the model's files in its own)."""
    for name, pod in pod_specs(rendered):
        if name.endswith("-predictor"):
            continue
        empty = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for c in containers(pod):
            where = f"{name}/{c['name']}"
            assert c.get("securityContext", {}).get("readOnlyRootFilesystem") is True, where
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert mounts.get("/tmp") in empty, where


def test_no_secret_values_anywhere(rendered):
    assert not [o for o in rendered if o["kind"] == "Secret"]  # created out of band
    # The templates are not manifests: `kubectl apply -f manifests/secrets/` (which reads
    # .yaml/.yml/.json only) cannot blank a real Secret with their empty values.
    applyable = [
        p for p in (MANIFESTS / "secrets").iterdir() if p.suffix in (".yaml", ".yml", ".json")
    ]
    assert applyable == []
    for name, pod in pod_specs(rendered):
        for c in containers(pod):
            for env in c.get("env", []):
                if re.search(r"TOKEN|PASSWORD|SECRET|ACCESS_KEY", env["name"]) and not env[
                    "name"
                ].endswith("_PATH"):
                    assert "value" not in env, f"{name}: {env['name']} is a literal"
            # argv is readable by every process on the node (ps, /proc): no secret expanded in
            for arg in [*c.get("command", []), *c.get("args", [])]:
                leaked = re.findall(r"\$\((\w*(?:PASSWORD|SECRET|TOKEN|ACCESS_KEY)\w*)\)", arg)
                assert not leaked, f"{name}/{c['name']}: {leaked} in its command line"
    templates = {}
    for path in (MANIFESTS / "secrets").glob("*.yaml.tmpl"):
        obj = yaml.safe_load(path.read_text())
        assert obj["kind"] == "Secret"
        assert all(v == "" for v in obj.get("stringData", {}).values()), path
        assert not obj.get("data"), path
        templates[obj["metadata"]["name"]] = set(obj["stringData"])
    assert set(templates) == SECRET_NAMES
    referenced = set()
    for _, pod in pod_specs(rendered):
        for c in containers(pod):
            referenced |= {e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e}
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in templates[ref["name"]], ref
                    referenced.add(ref["name"])
    for account in (o for o in rendered if o["kind"] == "ServiceAccount"):
        referenced |= {s["name"] for s in account.get("secrets", [])}
    assert "qubeflow-models-s3" in referenced  # the storage initializer's S3 keys
    assert referenced <= set(templates)
    defaults = PipelineConfig()
    assert {defaults.quantum_secret_name, defaults.data_secret_name} <= set(templates)
    assert templates[defaults.quantum_secret_name] == {"QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE"}
    assert templates[defaults.mlflow_secret_name] == {
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
    }


def test_mlflow_runs_with_its_authentication_and_the_accounts_job(rendered):
    pods = dict(pod_specs(rendered))
    [server] = [p for n, p in pods.items() if n.endswith("qubeflow-mlflow")]
    [mlflow] = [c for c in server["containers"] if c["name"] == "mlflow"]
    args = mlflow["args"]
    assert args[args.index("--app-name") + 1] == "basic-auth"
    env = {e["name"]: e for e in mlflow["env"]}
    assert env["MLFLOW_AUTH_CONFIG_PATH"]["value"].startswith("/var/run/mlflow-auth/")
    for key in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert env[key]["valueFrom"]["secretKeyRef"]["name"] == "qubeflow-mlflow-auth"
    # The auth config is written from env into a memory emptyDir by an init container; its
    # DB URI holds no password: the server's libpq reads PGPASSWORD (from the Secret), for the
    # backend store too, so no password is in a file, a manifest or a command line.
    [init] = [c for c in server["initContainers"] if c["name"] == "auth-config"]
    assert "PASSWORD" not in init["args"][0] and "$(" not in init["args"][0]
    assert not [e for e in init["env"] if "PASSWORD" in e["name"]]
    [mlflow] = [c for c in server["containers"] if c["name"] == "mlflow"]
    [pgpass] = [e for e in mlflow["env"] if e["name"] == "PGPASSWORD"]
    assert pgpass["valueFrom"]["secretKeyRef"] == {
        "name": "qubeflow-mlflow-db",
        "key": "POSTGRES_PASSWORD",
    }
    [accounts] = [p for n, p in pods.items() if n.endswith("qubeflow-mlflow-accounts")]
    [job] = accounts["containers"]
    assert job["command"] == ["python", "-m", "pipelines.mlflow_accounts"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in job["env"] if "valueFrom" in e
    }
    assert refs == {
        "MLFLOW_TRACKING_PASSWORD": "qubeflow-mlflow-auth",
        "QUBEFLOW_GATE_PASSWORD": "qubeflow-mlflow-gate",
        "QUBEFLOW_TRAINER_PASSWORD": "qubeflow-mlflow-trainer",
    }


def test_configmap_keys_are_pipeline_parameters_and_validate(rendered):
    [params] = [
        o
        for o in rendered
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("qubeflow-pipeline-params")
    ]
    data = params["data"]
    assert {"quantum_enabled", "quantum_backend", "quantum_image"} <= set(data)
    assert set(data) <= set(PipelineConfig.names())
    PipelineConfig.from_mapping(data).validate()
    # the CronJob submits with exactly this ConfigMap mounted as --config
    [(_, pod)] = [(n, p) for n, p in pod_specs(rendered) if n == "qubeflow-retrain"]
    [submit] = pod["containers"]
    assert submit["command"] == ["qubeflow", "submit"]
    mount = next(m for m in submit["volumeMounts"] if m["name"] == "params")
    assert submit["args"][submit["args"].index("--config") + 1] == mount["mountPath"]
    volume = next(v for v in pod["volumes"] if v["name"] == "params")
    assert volume["configMap"]["name"] == params["metadata"]["name"]
    assert pod["serviceAccountName"] == "qubeflow-submitter"


def test_flipping_the_flag_in_git_changes_what_the_next_run_gets(tmp_path):
    """A changed ConfigMap literal renames the generated ConfigMap and the CronJob follows."""
    import shutil as sh

    copy = tmp_path / "manifests"
    sh.copytree(MANIFESTS, copy)
    overlay = copy / "overlays" / "dev" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("quantum_enabled=true", "quantum_enabled=false"))

    def params_name(root: Path) -> tuple[str, str, str]:
        out = subprocess.run(
            ["kubectl", "kustomize", str(root / "overlays" / "dev")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        objs = [d for d in yaml.safe_load_all(out) if d]
        [cm] = [
            o
            for o in objs
            if o["kind"] == "ConfigMap"
            and o["metadata"]["name"].startswith("qubeflow-pipeline-params")
        ]
        [(_, pod)] = pod_specs([o for o in objs if o["kind"] == "CronJob"])
        vol = next(v for v in pod["volumes"] if v["name"] == "params")
        return cm["metadata"]["name"], vol["configMap"]["name"], cm["data"]["quantum_enabled"]

    before, after = params_name(MANIFESTS), params_name(copy)
    assert before[0] == before[1] and after[0] == after[1] and before[0] != after[0]
    assert (before[2], after[2]) == ("true", "false")


def test_rbac_is_least_privilege(rendered):
    [role] = [
        o for o in rendered if o["kind"] == "Role" and o["metadata"]["name"] == "qubeflow-submitter"
    ]
    for rule in role["rules"]:
        assert rule["apiGroups"] == ["pipelines.kubeflow.org"]
        assert set(rule["verbs"]) <= {"get", "list", "create"}
        assert "*" not in rule["resources"]
    assert not [o for o in rendered if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_network_policies_isolate_the_stores(rendered):
    policies = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "NetworkPolicy"}
    assert policies["qubeflow-default-deny-ingress"]["spec"]["podSelector"] == {}
    for store, job in (("postgres", "postgres-roles"), ("minio", "minio-accounts")):
        [rule] = policies[f"qubeflow-{store}-ingress"]["spec"]["ingress"]
        assert rule["from"] == [  # MLflow, and the Job that creates MLflow's account
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "qubeflow-mlflow"}}},
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": f"qubeflow-{job}"}}},
        ]


def _selects(policy: dict, labels: dict) -> bool:
    selector = policy["spec"]["podSelector"]
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    return all(
        labels.get(e["key"]) in e["values"]
        for e in selector.get("matchExpressions", [])
        if e["operator"] == "In"
    )


def test_the_stores_the_server_and_the_jobs_reach_only_dns_and_their_peers(rendered):
    """Egress is denied to every pod of this deployment but for DNS and its peers: PostgreSQL
    and MinIO initiate nothing, MLflow reaches only them, the accounts Job only MLflow, the
    store accounts Jobs only their store, the retraining CronJob only the KFP API."""
    egress = [
        o
        for o in rendered
        if o["kind"] == "NetworkPolicy" and "Egress" in o["spec"].get("policyTypes", [])
    ]
    dns = {("kube-dns", 53)}
    expected = {
        "qubeflow-postgres": dns,
        "qubeflow-minio": dns,
        "qubeflow-mlflow": dns | {("qubeflow-postgres", 5432), ("qubeflow-minio", 9000)},
        "qubeflow-mlflow-accounts": dns | {("qubeflow-mlflow", 5000)},
        "qubeflow-retrain": dns | {("ml-pipeline", 8888)},
        "qubeflow-postgres-roles": dns | {("qubeflow-postgres", 5432)},
        "qubeflow-minio-accounts": dns | {("qubeflow-minio", 9000)},
    }
    for app, allowed in expected.items():
        labels = {"app.kubernetes.io/name": app}
        policies = [p for p in egress if _selects(p, labels)]
        assert policies, f"{app}: no egress policy selects it"
        reached = set()
        for policy in policies:
            for rule in policy["spec"].get("egress", []):
                for peer in rule["to"]:
                    target = peer["podSelector"]["matchLabels"]
                    name = target.get("app.kubernetes.io/name") or target.get(
                        "k8s-app", target.get("app")
                    )
                    reached |= {(name, port["port"]) for port in rule["ports"]}
        assert reached == allowed, app
    templates = [
        o["spec"]["jobTemplate"]["spec"]["template"]
        if o["kind"] == "CronJob"
        else o["spec"]["template"]
        for o in rendered
        if o["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob")
    ]
    apps = {t["metadata"]["labels"].get("app.kubernetes.io/name") for t in templates}
    assert apps == set(expected)  # every pod of ours is under an egress policy


def test_only_mlflow_its_accounts_job_and_the_predictor_reach_minio(rendered):
    predictor = {"serving.kserve.io/inferenceservice": "qubeflow-champion"}
    policies = [o for o in rendered if o["kind"] == "NetworkPolicy"]
    minio = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "qubeflow-minio"}}
    ]
    sources = [peer for p in minio for rule in p["spec"]["ingress"] for peer in rule["from"]]
    assert sorted(sources, key=str) == sorted(
        [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "qubeflow-mlflow"}}},
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "qubeflow-minio-accounts"}}},
            {"podSelector": {"matchLabels": predictor}},
        ],
        key=str,
    )
    [ingress] = [p for p in policies if p["spec"]["podSelector"] == {"matchLabels": predictor}]
    assert {port["port"] for rule in ingress["spec"]["ingress"] for port in rule["ports"]} == {
        8080,
        9000,
    }


def _champion_env(overlay: str, root: Path = MANIFESTS) -> dict[str, str]:
    return kserve.read_champion_env(root / "overlays" / overlay / "champion.env")


def _one(objs: list[dict], kind: str) -> dict:
    [obj] = [o for o in objs if o["kind"] == kind]
    return obj


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_inferenceservice_serves_the_overlays_champion_with_mlserver(overlay):
    """The InferenceService: models:/<registered_model_name>@champion (the overlay's pipeline
    parameter) on the V2 protocol, its storageUri and version from champion.env, served by a
    ServingRuntime that supports its model format with MLServer's MLflow runtime; and the
    Pod and Container fields both carry validate against the Kubernetes schemas."""
    import kubernetes_validate

    objs = render(overlay)
    isvc, runtime = _one(objs, "InferenceService"), _one(objs, "ServingRuntime")
    env = _champion_env(overlay)
    assert set(env) == set(kserve.ENV_KEYS)
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert set(isvc["spec"]) == {"predictor"}
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"]["name"] == "mlflow" and model["protocolVersion"] == "v2"
    assert model["storageUri"] == env["storage_uri"]
    assert model["storageUri"].startswith(kserve.KSERVE_SCHEMES)
    params = _one(
        [o for o in objs if o["metadata"]["name"].startswith("qubeflow-pipeline-params")],
        "ConfigMap",
    )
    annotations = isvc["metadata"]["annotations"]
    assert annotations["qubeflow.io/registered-model"] == env["model_name"]
    assert env["model_name"] == params["data"]["registered_model_name"]  # what the gate promotes
    assert annotations["qubeflow.io/model-version"] == env["model_version"]
    assert annotations["serving.kserve.io/deploymentMode"] == "RawDeployment"
    # the local-config ConfigMap champion.env becomes is read by kustomize, never applied
    assert not [
        o
        for o in objs
        if o["metadata"]["name"].startswith("qubeflow-champion") and o["kind"] == "ConfigMap"
    ]

    assert model["runtime"] == runtime["metadata"]["name"]
    assert {"name": "mlflow", "version": model["modelFormat"]["version"]}.items() <= next(
        f for f in runtime["spec"]["supportedModelFormats"] if f["name"] == "mlflow"
    ).items()
    assert "v2" in runtime["spec"]["protocolVersions"]
    [container] = runtime["spec"]["containers"]
    assert container["name"] == "kserve-container"
    runtime_env = {e["name"]: e["value"] for e in container["env"]}
    assert runtime_env["MLSERVER_MODEL_IMPLEMENTATION"] == "mlserver_mlflow.MLflowRuntime"
    assert runtime_env["MLSERVER_MODEL_URI"] == "/mnt/models"  # where KServe puts storageUri
    assert runtime_env["MLSERVER_HTTP_PORT"] == "8080"
    assert container["image"] == SERVING_IMAGE

    account = next(
        o
        for o in objs
        if o["kind"] == "ServiceAccount"
        and o["metadata"]["name"] == predictor["serviceAccountName"]
    )
    assert account["automountServiceAccountToken"] is False
    # no schema for KServe's kinds, but what they embed has one: a Pod of the predictor's Pod
    # fields and the merged container, and the runtime's container, validate strictly
    pod_spec = predictor_pod(isvc, objs)
    for spec in (pod_spec, {"containers": runtime["spec"]["containers"]}):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    with pytest.raises(kubernetes_validate.ValidationError):  # a typo would be caught
        bad = {**pod_spec, "containers": [{**pod_spec["containers"][0], "resourcez": {}}]}
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": bad},
            K8S_VERSION,
            strict=True,
        )


def test_a_new_champion_env_in_git_changes_what_kserve_serves(tmp_path):
    """What write_champion_env commits is what the rendered InferenceService serves."""
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy)
    champion = kserve.ServedChampion(
        "qubeflow-classifier",
        "7",
        "m-0123abcd",
        "s3://mlflow-artifacts/1/models/m-0123abcd/artifacts",
    )
    (copy / "overlays" / "prod" / "champion.env").write_text(kserve.champion_env_text(champion))

    def served(root: Path, overlay: str) -> tuple[str, str]:
        out = subprocess.run(
            ["kubectl", "kustomize", str(root / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        isvc = _one([d for d in yaml.safe_load_all(out) if d], "InferenceService")
        return (
            isvc["spec"]["predictor"]["model"]["storageUri"],
            isvc["metadata"]["annotations"]["qubeflow.io/model-version"],
        )

    assert served(copy, "prod") == (champion.storage_uri, "7")
    assert served(copy, "dev") == served(MANIFESTS, "dev")  # the other overlay is untouched
    assert served(MANIFESTS, "prod") != served(copy, "prod")


def test_argocd_applications_point_at_overlays():
    for path in (MANIFESTS / "argocd").glob("*.yaml"):
        app = yaml.safe_load(path.read_text())
        assert app["kind"] == "Application"
        assert (ROOT / app["spec"]["source"]["path"] / "kustomization.yaml").is_file()


def test_make_deploy_applies_the_overlay():
    out = subprocess.run(
        ["make", "-n", "deploy", "ENV=prod"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    assert "kubectl apply -k manifests/overlays/prod" in out
    # the accounts Jobs first (immutable pod templates): re-created, so they re-run
    delete = "kubectl delete -k manifests/overlays/prod -l qubeflow.dev/rerun=on-deploy"
    assert out.index(delete) < out.index("kubectl apply -k")


def test_every_job_is_recreated_on_sync_and_deploy(rendered):
    jobs = [o for o in rendered if o["kind"] == "Job"]
    assert {j["metadata"]["name"] for j in jobs} == {
        "qubeflow-mlflow-accounts",
        "qubeflow-postgres-roles",
        "qubeflow-minio-accounts",
    }
    for job in jobs:
        meta = job["metadata"]
        assert meta["labels"]["qubeflow.dev/rerun"] == "on-deploy"  # make deploy deletes it
        assert meta["annotations"]["argocd.argoproj.io/hook"] == "Sync"
        assert meta["annotations"]["argocd.argoproj.io/hook-delete-policy"] == (
            "BeforeHookCreation"
        )
    # nothing else carries the label `make deploy` deletes by
    assert [o for o in rendered if "qubeflow.dev/rerun" in o["metadata"].get("labels", {})] == jobs


def test_the_quantum_image_allow_list_is_deployed_under_the_name_the_pipeline_reads(rendered):
    from components.quantum.image_policy import ALLOWLIST_CONFIGMAP, ALLOWLIST_ENV, allowed_images

    [cm] = [
        o
        for o in rendered
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == ALLOWLIST_CONFIGMAP
    ]
    allowed = allowed_images(cm["data"][ALLOWLIST_ENV])
    params = next(
        o for o in rendered if o["metadata"]["name"].startswith("qubeflow-pipeline-params")
    )
    from components.quantum.image_policy import check_quantum_image

    check_quantum_image(params["data"]["quantum_image"], allowed)  # the configured image passes
