"""The Kustomize manifests, offline: every overlay renders, every object validates against
the Kubernetes schemas (strict), and the rendered objects follow the deployment policy
(pinned images, limits, Pod Security "restricted", no secret values, ConfigMap keys that are
pipeline parameters)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.image_refs import BASE_IMAGE
from pipelines.config import PipelineConfig

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = sorted(p.name for p in (MANIFESTS / "overlays").iterdir() if p.is_dir())
K8S_VERSION = "1.32.0"  # the kubectl/Kustomize this is checked with; see manifests/README.md
SECRET_NAMES = {"qubeflow-ibm-quantum", "qubeflow-s3", "qubeflow-mlflow-db", "qubeflow-minio"}

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
    return out


def containers(pod: dict) -> list[dict]:
    return pod.get("initContainers", []) + pod["containers"]


def test_overlays_exist():
    assert set(OVERLAYS) == {"dev", "prod"}


def test_every_object_validates_strictly(rendered):
    import kubernetes_validate

    assert len(rendered) > 10
    for obj in rendered:
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


def test_no_secret_values_anywhere(rendered):
    assert not [o for o in rendered if o["kind"] == "Secret"]  # created out of band
    for name, pod in pod_specs(rendered):
        for c in containers(pod):
            for env in c.get("env", []):
                if re.search(r"TOKEN|PASSWORD|SECRET|ACCESS_KEY", env["name"]) and not env[
                    "name"
                ].endswith("_PATH"):
                    assert "value" not in env, f"{name}: {env['name']} is a literal"
    templates = {}
    for path in (MANIFESTS / "secrets").glob("*.yaml"):
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
    assert referenced <= set(templates)
    defaults = PipelineConfig()
    assert {defaults.quantum_secret_name, defaults.data_secret_name} <= set(templates)
    assert templates[defaults.quantum_secret_name] == {"QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE"}


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
    [role] = [o for o in rendered if o["kind"] == "Role"]
    for rule in role["rules"]:
        assert rule["apiGroups"] == ["pipelines.kubeflow.org"]
        assert set(rule["verbs"]) <= {"get", "list", "create"}
        assert "*" not in rule["resources"]
    assert not [o for o in rendered if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_network_policies_isolate_the_stores(rendered):
    policies = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "NetworkPolicy"}
    assert policies["qubeflow-default-deny-ingress"]["spec"]["podSelector"] == {}
    for store in ("postgres", "minio"):
        [rule] = policies[f"qubeflow-{store}-ingress"]["spec"]["ingress"]
        assert rule["from"] == [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "qubeflow-mlflow"}}}
        ]


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
