"""The cluster-side guard of the IBM Quantum token (manifests/cluster), offline: the directory
renders and validates strictly; the ValidatingAdmissionPolicy's own CEL (read from the rendered
YAML) is evaluated with cel-python the way the API server evaluates it (``object``,
``oldObject``, ``params``, ``request``, ``variables`` in order, every validation, the first
failure reported, the binding's ``parameterNotFoundAction``, ``failurePolicy``) against Pods
that do and do not reference the Secret. Its rules: a container that can read the Secret (env,
envFrom, a mounted volume carrying it) runs an allow-listed image, decided as the pipeline
preflight's ``check_quantum_image`` decides for every non-empty allow-list; a Pod that
references it shares no process namespace; an ephemeral container added to such a Pod runs an
allow-listed image. The other containers (on KFP: Argo's init/wait, the kfp-launcher) may run
any image. The second policy, through the same harness: only the GitOps controller (Argo CD's)
or a system:masters member creates, changes or deletes that allow-list ConfigMap."""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass, field

import pytest
import yaml

from components.errors import ConfigError
from components.quantum import image_policy
from pipelines.config import PipelineConfig
from tests.deploy.test_manifests import K8S_VERSION, MANIFESTS, SECRET_NAMES, render

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (for `kubectl kustomize`) is not installed"
)

CLUSTER = MANIFESTS / "cluster"
SECRET = PipelineConfig().quantum_secret_name  # the Secret the pipeline exposes to the step
KEY = image_policy.ALLOWLIST_ENV
QUANTUM = "ghcr.io/qubeflow/qubeflow-quantum:0.1.0"
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
EVIL = "docker.io/attacker/exfiltrate:1"
GUARD_LABEL = {"qubeflow.dev/quantum-guard": "enabled"}


IMAGE_GUARD = "qubeflow-quantum-image-guard"
ALLOWLIST_GUARD = "qubeflow-quantum-allowlist-guard"


@functools.cache
def rendered_cluster() -> tuple[dict, ...]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(CLUSTER)], capture_output=True, text=True, check=True
    ).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def cluster_objects(name: str = IMAGE_GUARD) -> dict[str, dict]:
    """The policy ``name`` and its binding, by kind."""
    return {d["kind"]: d for d in rendered_cluster() if d["metadata"]["name"] == name}


# --- the CEL harness ---------------------------------------------------------------------


def _kubernetes_strings_library(celtypes) -> dict:
    """The functions of Kubernetes' CEL strings library (cel-go ext.Strings) the policy
    uses, which cel-python 0.5.0 lacks, implemented as cel-go does (ext/strings.go):
    ``<string>.split(<string>)`` is Go's ``strings.Split``, ``<string>.trim()`` is
    ``strings.TrimSpace`` (Unicode White_Space, which Go's ``unicode.IsSpace`` is; Python's
    ``str.strip()`` would also strip U+001C..U+001F), ``<list<string>>.join([<string>])``
    is ``strings.Join``. Anything else is a TypeError, which cel-python reports as "no such
    overload", as cel-go's type check would."""
    go_space = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
    go_space += "\u2028\u2029\u202f\u205f\u3000"

    def string(value) -> str:
        if not isinstance(value, str):  # celtypes.StringType, or the str of cel-python's `+`
            raise TypeError(f"{type(value).__name__} is not a string")
        return str(value)

    def split(target, separator):
        text, sep = string(target), string(separator)
        # Go's strings.Split(s, "") splits after each UTF-8 sequence; Python's needs a sep
        parts = list(text) if sep == "" else text.split(sep)
        return celtypes.ListType([celtypes.StringType(p) for p in parts])

    def trim(target):
        return celtypes.StringType(string(target).strip(go_space))

    def join(target, separator=None):
        if not isinstance(target, list):
            raise TypeError(f"{type(target).__name__} is not a list")
        sep = "" if separator is None else string(separator)
        return celtypes.StringType(sep.join(string(item) for item in target))

    return {"split": split, "trim": trim, "join": join}


@dataclass
class Decision:
    allowed: bool
    message: str = ""  # the first failed validation's, which the API server reports
    variables: dict = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)  # every failed validation's, in order
    matched: bool = True  # False: no rule of matchConstraints matches, nothing is evaluated


class AdmissionPolicy:
    """One ValidatingAdmissionPolicy and its binding, evaluated as the API server does for a
    request in a namespace the binding selects: a request no rule of matchConstraints matches
    is not evaluated (``matches``, a model); no parameter object (a policy with paramKind) ->
    the binding's parameterNotFoundAction; the variables in order (each sees the earlier ones as
    ``variables.<name>``; Kubernetes evaluates them lazily, which differs only when an
    unused one errs); every validation is evaluated, one passes if its expression is true and
    fails with its messageExpression if false; the request is denied with the first failure's
    message. An evaluation error, which the failurePolicy (Fail) would turn into a denial,
    fails the test instead: a denial here is a validation's."""

    def __init__(self, celpy, policy: dict, binding: dict):
        self.celpy = celpy
        self.env = celpy.Environment()
        self.functions = _kubernetes_strings_library(celpy.celtypes)
        self.spec, self.binding = policy["spec"], binding["spec"]
        self.variables = [
            (v["name"], self.compile(v["expression"])) for v in self.spec["variables"]
        ]
        self.validations = [
            (self.compile(v["expression"]), self.compile(v["messageExpression"]))
            for v in self.spec["validations"]
        ]

    def compile(self, expression: str):
        return self.env.program(self.env.compile(expression), functions=self.functions)

    @staticmethod
    def evaluate(program, activation: dict):
        try:
            return program.evaluate(activation)
        except Exception as error:  # cel-python raises some errors instead of returning them
            return error

    def matches(
        self, operation: str, resource: str, sub_resource: str = "", name: str = ""
    ) -> bool:
        """The policy's matchConstraints.resourceRules, as the API server applies them
        (k8s.io/apiserver admission/plugin/policy/matching, matchPolicy Exact): a rule matches
        a request of one of its operations, of the core group, v1, of one of its resources
        (``resource/subresource`` for a subresource), and, if it lists resourceNames, of one of
        those names. The request's name is empty for each object a DELETECOLLECTION removes.
        A model, not the API server's code (no other groups, no excludeResourceRules, no
        equivalent-resource matching); the rules' own fields are asserted as well."""
        constraints = self.spec["matchConstraints"]
        assert set(constraints) == {"resourceRules"}, "the model knows resourceRules only"
        full = f"{resource}/{sub_resource}" if sub_resource else resource
        for rule in constraints["resourceRules"]:
            assert rule["apiGroups"] == [""] and rule["apiVersions"] == ["v1"]
            names = rule.get("resourceNames", [])  # empty: any name
            in_rule = operation in rule["operations"] and full in rule["resources"]
            if in_rule and (not names or name in names):
                return True
        return False

    def admit(
        self,
        pod: dict,
        params: dict | None,
        operation: str = "CREATE",
        old: dict | None = None,
        sub_resource: str = "",
    ) -> Decision:
        """A write of ``pod``."""
        return self.review(pod, old, operation, params=params, sub_resource=sub_resource)

    def review(
        self,
        obj: dict | None,
        old: dict | None = None,
        operation: str = "CREATE",
        *,
        params: dict | None = None,
        sub_resource: str = "",
        user: tuple[str, list[str]] = ("someone", []),
        name: str | None = None,
        namespace_phase: str = "Active",
    ) -> Decision:
        """A request on ``obj`` (null on DELETE; ``old`` is null on CREATE) by ``user``
        (username, groups). ``name`` is the request's (default: the object's; empty for an
        object a DELETECOLLECTION removes). Kubernetes drops empty fields (``omitempty``) from
        ``request``, so an empty name, subResource or group list is absent here too."""
        target = obj if obj is not None else old
        kind = target["kind"]
        resource = kind.lower() + "s"
        name = target["metadata"]["name"] if name is None else name
        if not self.matches(operation, resource, sub_resource, name):
            return Decision(True, matched=False)
        if "paramKind" not in self.spec:
            assert params is None and "paramRef" not in self.binding
        elif params is None:
            assert self.binding["paramRef"]["parameterNotFoundAction"] == "Deny"
            assert self.spec["failurePolicy"] == "Fail"
            return Decision(False, "no params found for policy binding with `Deny` action")
        cel = self.celpy.json_to_cel
        namespace = target["metadata"]["namespace"]
        user_info = {"username": user[0], "groups": list(user[1])}
        user_info = {k: v for k, v in user_info.items() if v}
        request = {
            "operation": operation,
            "namespace": namespace,
            "name": name,
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": resource},
            "subResource": sub_resource,
            "userInfo": user_info,
            "dryRun": False,
        }
        request = {k: v for k, v in request.items() if v != ""}
        namespace_object = {
            "metadata": {"name": namespace, "labels": GUARD_LABEL},
            "status": {"phase": namespace_phase},
        }
        activation = {
            "object": cel(obj),
            "oldObject": cel(old),
            "params": cel(params),
            "namespaceObject": cel(namespace_object),
            "request": cel(request),
        }
        values = {}
        for variable, program in self.variables:
            activation["variables"] = self.celpy.celtypes.MapType(
                {self.celpy.celtypes.StringType(k): v for k, v in values.items()}
            )
            values[variable] = self.evaluate(program, activation)
        activation["variables"] = self.celpy.celtypes.MapType(
            {self.celpy.celtypes.StringType(k): v for k, v in values.items()}
        )
        failed = []
        for expression, message in self.validations:
            result = self.evaluate(expression, activation)
            # the API server would deny (failurePolicy: Fail), but no case here should err
            assert isinstance(result, self.celpy.celtypes.BoolType), f"CEL error: {result!r}"
            if not result:
                text = self.evaluate(message, activation)
                assert isinstance(text, str), text  # cel-python's `+` of strings gives a str
                assert "\n" not in text  # Kubernetes drops a message with line breaks
                failed.append(str(text))
        return Decision(not failed, failed[0] if failed else "", values, failed)


@pytest.fixture(scope="module")
def celpy():
    return pytest.importorskip(
        "celpy",
        reason="cel-python is not installed (`dev` extra: cel-python==0.5.0); the policy's CEL "
        "is not evaluated",
    )


@pytest.fixture(scope="module")
def policy(celpy) -> AdmissionPolicy:
    objs = cluster_objects()
    return AdmissionPolicy(
        celpy, objs["ValidatingAdmissionPolicy"], objs["ValidatingAdmissionPolicyBinding"]
    )


# --- Pods and parameters -----------------------------------------------------------------

ARGOEXEC = "quay.io/argoproj/argoexec:v3.4.17"
LAUNCHER = "ghcr.io/kubeflow/kfp-launcher:2.5.0"
DEBUG = "docker.io/library/busybox:1.36"
DEFAULT = "ghcr.io/qubeflow/"  # manifests/base's QUBEFLOW_QUANTUM_IMAGES


def container(
    image: str, name: str = "main", env: bool = False, env_from: bool = False, mounts=()
) -> dict:
    c: dict = {"name": name, "image": image}
    if env:
        ref = {"secretKeyRef": {"name": SECRET, "key": "QISKIT_IBM_TOKEN", "optional": True}}
        c["env"] = [{"name": "OTHER", "value": "x"}, {"name": "QISKIT_IBM_TOKEN", "valueFrom": ref}]
    if env_from:
        c["envFrom"] = [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": SECRET}}]
    if mounts:
        c["volumeMounts"] = [
            {"name": m, "mountPath": f"/mnt/{m}", "readOnly": True} for m in mounts
        ]
    return c


def pod(*containers: dict, init=(), ephemeral=(), volumes=(), **spec_fields) -> dict:
    """A Pod; ``spec_fields`` are further fields of its spec (shareProcessNamespace, hostPID)."""
    spec: dict = {"containers": list(containers), **spec_fields}
    if init:
        spec["initContainers"] = list(init)
    if ephemeral:
        spec["ephemeralContainers"] = list(ephemeral)
    if volumes:
        spec["volumes"] = list(volumes)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "train-quantum-model-abc12", "namespace": "qubeflow-dev"},
        "spec": spec,
    }


def params(raw: str | None) -> dict:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": image_policy.ALLOWLIST_CONFIGMAP, "namespace": "qubeflow-dev"},
    }
    if raw is not None:
        cm["data"] = {KEY: raw, "unrelated": "ghcr.io/"}
    return cm


TMP_VOLUME = {"name": "tmp", "emptyDir": {}}
SECRET_VOLUME = {"name": "ibm", "secret": {"secretName": SECRET}}
PROJECTED_VOLUME = {
    "name": "creds",
    "projected": {
        "sources": [
            {"serviceAccountToken": {"path": "token"}},
            {"secret": {"name": SECRET, "items": [{"key": "QISKIT_IBM_TOKEN", "path": "t"}]}},
        ]
    },
}


def kfp_pod(main: dict | None = None, volumes=(), **spec_fields) -> dict:
    """Shaped like the quantum step's Pod on KFP v2 / Argo (emissary executor): Argo's ``init``
    and ``wait`` containers (argoexec) and the ``kfp-launcher`` initContainer, none of which
    references the Secret, next to the step's ``main`` container, which takes the IBM env from
    the Secret (pipelines/retraining.py: kubernetes.use_secret_as_env). Argo mirrors main's
    volume mounts into ``wait`` (to collect output artifacts from them)."""
    main = main or container(QUANTUM, env=True)
    own = main.get("volumeMounts", [])
    main = {**main, "volumeMounts": [*own, _mount("var-run-argo"), _mount("kfp-launcher")]}
    wait = {
        **container(ARGOEXEC, name="wait"),
        "env": [
            {"name": "ARGO_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        ],
        "volumeMounts": [
            _mount("var-run-argo"),
            *({**m, "mountPath": "/mainctrfs" + m["mountPath"]} for m in own),
        ],
    }
    init = [
        container(ARGOEXEC, name="init", mounts=("var-run-argo",)),
        container(LAUNCHER, name="kfp-launcher", mounts=("kfp-launcher",)),
    ]
    own = [{"name": n, "emptyDir": {}} for n in ("var-run-argo", "kfp-launcher", "tmp-dir-argo")]
    return pod(wait, main, init=init, volumes=[*own, *volumes], **spec_fields)


def _mount(name: str) -> dict:
    return {"name": name, "mountPath": f"/mnt/{name}"}


def create(pod_: dict) -> dict:
    return {"pod": pod_}


def debug(base: dict, ephemeral: dict) -> dict:
    """The request that adds an ephemeral container to ``base`` (kubectl debug): an UPDATE of
    the subresource pods/ephemeralcontainers, whose object is the whole Pod."""
    spec = base["spec"]
    new = {
        **base,
        "spec": {**spec, "ephemeralContainers": [*spec.get("ephemeralContainers", []), ephemeral]},
    }
    return {"pod": new, "operation": "UPDATE", "old": base, "sub_resource": "ephemeralcontainers"}


def debugger(image: str = DEBUG, **kwargs) -> dict:
    return {**container(image, name="debug", **kwargs), "targetContainerName": "main"}


# The first line of each rule's message, in the order of the policy's validations.
RULES = {
    "readers": f"container(s) not allowed to read Secret {SECRET} (the IBM Quantum token): ",
    "processes": "process namespace shared (",
    "ephemeral": "ephemeral container(s) not allowed: ",
}
SHARE, HOST_PID = "spec.shareProcessNamespace", "spec.hostPID"
REFERENCING = pod(container(QUANTUM, env=True))

# (id, request, allow-list, None if allowed else (the rule reported, what it names))
CASES = [
    # --- which containers can read the Secret
    ("env secretKeyRef, allowed image", create(REFERENCING), DEFAULT, None),
    (
        "envFrom secretRef, allowed image",
        create(pod(container(QUANTUM, env_from=True))),
        DEFAULT,
        None,
    ),
    (
        "env secretKeyRef, disallowed image",
        create(pod(container(EVIL, env=True))),
        DEFAULT,
        ("readers", [("main", EVIL)]),
    ),
    (
        "envFrom secretRef, disallowed image",
        create(pod(container(EVIL, env_from=True))),
        DEFAULT,
        ("readers", [("main", EVIL)]),
    ),
    (
        "initContainer takes the secret, disallowed image",
        create(pod(container(QUANTUM), init=[container(EVIL, name="init", env_from=True)])),
        DEFAULT,
        ("readers", [("init", EVIL)]),
    ),
    (
        "native sidecar (restartPolicy Always) mounts the secret volume, disallowed image",
        create(
            pod(
                container(QUANTUM, env=True),
                init=[
                    {**container(EVIL, name="proxy", mounts=("ibm",)), "restartPolicy": "Always"}
                ],
                volumes=[SECRET_VOLUME],
            )
        ),
        DEFAULT,
        ("readers", [("proxy", EVIL)]),
    ),
    (
        "secret volume mounted by a disallowed container",
        create(pod(container(EVIL, mounts=("ibm",)), volumes=[SECRET_VOLUME])),
        DEFAULT,
        ("readers", [("main", EVIL)]),
    ),
    (
        "secret volume mounted by an allowed container",
        create(pod(container(QUANTUM, mounts=("ibm",)), volumes=[SECRET_VOLUME])),
        DEFAULT,
        None,
    ),
    (
        "disallowed sidecar mounts the secret volume",
        create(
            pod(
                container(QUANTUM, mounts=("ibm",)),
                container(EVIL, name="sidecar", mounts=("tmp", "ibm")),
                volumes=[TMP_VOLUME, SECRET_VOLUME],
            )
        ),
        DEFAULT,
        ("readers", [("sidecar", EVIL)]),
    ),
    (
        "disallowed sidecar that neither references nor mounts the secret",
        create(
            pod(
                container(QUANTUM, env=True, mounts=("ibm",)),
                container(EVIL, name="sidecar", mounts=("tmp",)),
                volumes=[TMP_VOLUME, SECRET_VOLUME],
            )
        ),
        DEFAULT,
        None,
    ),
    (
        "disallowed initContainer that does not reference the secret",
        create(pod(container(QUANTUM, env=True), init=[container(EVIL, name="init")])),
        DEFAULT,
        None,
    ),
    (
        "projected volume with a secret source, mounted by a disallowed container",
        create(pod(container(EVIL, mounts=("creds",)), volumes=[TMP_VOLUME, PROJECTED_VOLUME])),
        DEFAULT,
        ("readers", [("main", EVIL)]),
    ),
    (
        "projected volume with a secret source, mounted by an allowed container",
        create(pod(container(QUANTUM, mounts=("creds",)), volumes=[PROJECTED_VOLUME])),
        DEFAULT,
        None,
    ),
    (
        "projected volume with a secret source that nobody mounts",
        create(pod(container(EVIL, mounts=("tmp",)), volumes=[TMP_VOLUME, PROJECTED_VOLUME])),
        DEFAULT,
        None,
    ),
    (
        "secret volume that nobody mounts",
        create(pod(container(EVIL), init=[container(EVIL, name="i")], volumes=[SECRET_VOLUME])),
        DEFAULT,
        None,
    ),
    (
        "a volume named like the secret that does not carry it",
        create(pod(container(EVIL, mounts=(SECRET,)), volumes=[{"name": SECRET, "emptyDir": {}}])),
        DEFAULT,
        None,
    ),
    (
        "a mounted projected volume of other sources only",
        create(
            pod(
                container(EVIL, mounts=("creds",)),
                volumes=[
                    {
                        "name": "creds",
                        "projected": {
                            "sources": [
                                {"configMap": {"name": SECRET}},
                                {"secret": {"name": "qubeflow-s3"}},
                                {"downwardAPI": {"items": []}},
                            ]
                        },
                    }
                ],
            )
        ),
        DEFAULT,
        None,
    ),
    (
        "no reference to the secret, any image",
        create(
            pod(
                {
                    **container("docker.io/library/busybox:latest"),
                    "env": [
                        {
                            "name": "A",
                            "valueFrom": {"configMapKeyRef": {"name": SECRET, "key": "k"}},
                        },
                        {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ],
                    "envFrom": [{"configMapRef": {"name": SECRET}}],
                },
                init=[container(EVIL, name="i")],
                volumes=[
                    {"name": "c", "configMap": {"name": SECRET}},
                    {"name": "e", "emptyDir": {}},
                ],
            )
        ),
        DEFAULT,
        None,
    ),
    (
        "other secrets only, any image, empty allow-list",
        create(
            pod(
                {
                    **container(EVIL, mounts=("s",)),
                    "envFrom": [{"secretRef": {"name": "qubeflow-s3"}}],
                    "env": [
                        {"name": "E", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}
                    ],
                },
                volumes=[{"name": "s", "secret": {"secretName": "qubeflow-minio"}}],
            )
        ),
        "",
        None,
    ),
    (
        "several readers: only the disallowed ones are named, non-readers are not",
        create(
            pod(
                container(QUANTUM, env=True),
                container(EVIL, name="sidecar", env_from=True),
                container("docker.io/library/busybox:1", name="bystander"),
                init=[container("x:1", name="init", mounts=("ibm",))],
                volumes=[SECRET_VOLUME],
            )
        ),
        DEFAULT,
        ("readers", [("sidecar", EVIL), ("init", "x:1")]),
    ),
    # --- the allow-list's matching (check_quantum_image's)
    (
        "prefix entry without a trailing /:@ does not match a longer name",
        create(pod(container("ghcr.io/qubeflow/quantum-evil:1", env=True))),
        "ghcr.io/qubeflow/quantum",
        ("readers", [("main", "ghcr.io/qubeflow/quantum-evil:1")]),
    ),
    (
        "an entry without a trailing /:@ matches only itself",
        create(pod(container("ghcr.io/qubeflow/quantum", env=True))),
        "ghcr.io/qubeflow/quantum",
        None,
    ),
    (
        "digest-pinned entry, same digest",
        create(pod(container(f"ghcr.io/qubeflow/qubeflow-quantum@{DIGEST}", env=True))),
        f"ghcr.io/qubeflow/qubeflow-quantum@{DIGEST}",
        None,
    ),
    (
        "digest-pinned entry, other digest",
        create(pod(container(f"ghcr.io/qubeflow/qubeflow-quantum@{OTHER_DIGEST}", env=True))),
        f"ghcr.io/qubeflow/qubeflow-quantum@{DIGEST}",
        ("readers", [("main", f"ghcr.io/qubeflow/qubeflow-quantum@{OTHER_DIGEST}")]),
    ),
    (
        "digest-pinned entry, the tag of the same repository",
        create(REFERENCING),
        f"ghcr.io/qubeflow/qubeflow-quantum@{DIGEST}",
        ("readers", [("main", QUANTUM)]),
    ),
    (
        "an entry ending in @ allows any digest of the repository, not a tag",
        create(pod(container(f"ghcr.io/qubeflow/qubeflow-quantum@{OTHER_DIGEST}", env=True))),
        "ghcr.io/qubeflow/qubeflow-quantum@",
        None,
    ),
    ("empty allow-list", create(REFERENCING), "", ("readers", [("main", QUANTUM)])),
    ("blank entries only", create(REFERENCING), " ,  , ", ("readers", [("main", QUANTUM)])),
    (
        "multiple entries with spaces around the commas (middle one)",
        create(REFERENCING),
        " docker.io/acme/q:2 ,  ghcr.io/qubeflow/qubeflow-quantum:0.1.0  , quay.io/acme/ ",
        None,
    ),
    (
        "multiple entries with spaces around the commas (last one)",
        create(pod(container("quay.io/acme/q:3", env=True))),
        " docker.io/acme/q:2 ,  ghcr.io/qubeflow/qubeflow-quantum:0.1.0  , quay.io/acme/ ",
        None,
    ),
    (
        "multiple entries with spaces around the commas (none)",
        create(pod(container("docker.io/acme/q:20", env=True))),
        " docker.io/acme/q:2 ,  ghcr.io/qubeflow/qubeflow-quantum:0.1.0  , quay.io/acme/ ",
        ("readers", [("main", "docker.io/acme/q:20")]),
    ),
    # --- no shared process namespace next to the Secret
    (
        "shareProcessNamespace with the secret in env",
        create(pod(container(QUANTUM, env=True), shareProcessNamespace=True)),
        DEFAULT,
        ("processes", [SHARE]),
    ),
    (
        "shareProcessNamespace: false with the secret in env",
        create(pod(container(QUANTUM, env=True), shareProcessNamespace=False)),
        DEFAULT,
        None,
    ),
    (
        "shareProcessNamespace with a projected secret volume that nobody mounts",
        create(pod(container(EVIL), volumes=[PROJECTED_VOLUME], shareProcessNamespace=True)),
        DEFAULT,
        ("processes", [SHARE]),
    ),
    (
        "shareProcessNamespace without a reference to the secret",
        create(pod(container(EVIL), container(EVIL, name="b"), shareProcessNamespace=True)),
        DEFAULT,
        None,
    ),
    (
        "hostPID with the secret in envFrom",
        create(pod(container(QUANTUM, env_from=True), hostPID=True)),
        DEFAULT,
        ("processes", [HOST_PID]),
    ),
    (
        "shareProcessNamespace and hostPID with the secret in a mounted volume",
        create(
            pod(
                container(QUANTUM, mounts=("ibm",)),
                volumes=[SECRET_VOLUME],
                shareProcessNamespace=True,
                hostPID=True,
            )
        ),
        DEFAULT,
        ("processes", [SHARE, HOST_PID]),
    ),
    (
        "shareProcessNamespace and a disallowed reader: the reader rule is reported",
        create(pod(container(EVIL, env=True), shareProcessNamespace=True)),
        DEFAULT,
        ("readers", [("main", EVIL)]),
    ),
    # --- the quantum step's Pod on KFP
    ("KFP task Pod, allowed main image", create(kfp_pod()), DEFAULT, None),
    (
        "KFP task Pod, disallowed main image",
        create(kfp_pod(container(EVIL, env=True))),
        DEFAULT,
        ("readers", [("main", EVIL)]),
    ),
    (
        "KFP task Pod, main image on a pinned list that names no infrastructure image",
        create(kfp_pod()),
        f"{QUANTUM}, ghcr.io/qubeflow/qubeflow-quantum@",
        None,
    ),
    (
        "KFP task Pod with the secret as a volume: Argo mirrors it into wait",
        create(kfp_pod(container(QUANTUM, mounts=("ibm",)), volumes=[SECRET_VOLUME])),
        DEFAULT,
        ("readers", [("wait", ARGOEXEC)]),
    ),
    (
        "KFP task Pod on Argo's old PNS executor (shareProcessNamespace)",
        create(kfp_pod(shareProcessNamespace=True)),
        DEFAULT,
        ("processes", [SHARE]),
    ),
    # --- ephemeral containers (kubectl debug)
    (
        "disallowed debug container added to a Pod whose main takes the secret",
        debug(REFERENCING, debugger()),
        DEFAULT,
        ("ephemeral", [("debug", DEBUG)]),
    ),
    (
        "allowed debug container added to a Pod whose main takes the secret",
        debug(REFERENCING, debugger("ghcr.io/qubeflow/debug:1")),
        DEFAULT,
        None,
    ),
    (
        "disallowed debug container added to a Pod without the secret",
        debug(pod(container(EVIL)), debugger()),
        DEFAULT,
        None,
    ),
    (
        "disallowed debug container that takes the secret itself, Pod without it",
        debug(pod(container(EVIL)), debugger(EVIL, env_from=True)),
        DEFAULT,
        ("readers", [("debug", EVIL)]),
    ),
    (
        "disallowed debug container that mounts the Pod's unmounted secret volume",
        debug(pod(container(EVIL), volumes=[SECRET_VOLUME]), debugger(mounts=("ibm",))),
        DEFAULT,
        ("readers", [("debug", DEBUG)]),
    ),
    (
        "disallowed debug container added to a Pod with an unmounted secret volume",
        debug(pod(container(EVIL), volumes=[PROJECTED_VOLUME]), debugger()),
        DEFAULT,
        ("ephemeral", [("debug", DEBUG)]),
    ),
    (
        "disallowed debug container added to a KFP task Pod",
        debug(kfp_pod(), debugger()),
        DEFAULT,
        ("ephemeral", [("debug", DEBUG)]),
    ),
    (
        "second debug container: every disallowed one is named",
        debug(debug(kfp_pod(), debugger(EVIL))["pod"], {**debugger(), "name": "debug-2"}),
        DEFAULT,
        ("ephemeral", [("debug", EVIL), ("debug-2", DEBUG)]),
    ),
]


def assert_decision(decision: Decision, raw: str, expected) -> None:
    if expected is None:
        assert decision.allowed, decision.message
        return
    rule, named = expected
    assert not decision.allowed
    lead = RULES[rule]
    assert decision.message.startswith(lead), decision.message
    rest = decision.message[len(lead) :]
    allowed = image_policy.allowed_images(raw)
    if rule == "processes":
        assert rest.split(": true)")[0] == ", ".join(named)
        assert f"references Secret {SECRET}" in decision.message
        assert decision.message.endswith("; remove " + " and ".join(named))
        return
    # every offender (name and image), only those, in the Pod's order
    assert rest.split("; ")[0] == ", ".join(f"{n} ({i})" for n, i in named)
    assert f"Secret {SECRET}" in decision.message
    assert f"ConfigMap {image_policy.ALLOWLIST_CONFIGMAP} (key {KEY})" in decision.message
    assert ("empty or missing" in decision.message) is (not allowed)
    for _, image in named:
        assert not allowed or not _python_allows(allowed, image)


@pytest.mark.parametrize(
    ("request_", "raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_policy_admits_exactly_the_allowed_pods(policy, request_, raw, expected):
    assert_decision(policy.admit(**request_, params=params(raw)), raw, expected)


def test_every_validation_is_evaluated_and_the_first_failure_reported(policy):
    everything = debug(pod(container(EVIL, env=True), shareProcessNamespace=True), debugger())
    decision = policy.admit(**everything, params=params(DEFAULT))
    leads = list(RULES.values())  # one failure per rule, in the policy's order
    assert [m[: len(lead)] for m, lead in zip(decision.messages, leads, strict=True)] == leads
    assert decision.message == decision.messages[0]


def _image_guard_denials(policy: AdmissionPolicy):
    for _, request_, raw, expected in CASES:
        if expected is not None:
            yield expected[0], policy.admit(**request_, params=params(raw))


def _allowlist_guard_denials(policy: AdmissionPolicy):
    for _, request_, expected in ALLOWLIST_CASES:
        if expected not in (None, NOT_MATCHED):
            yield expected, policy.review(**request_)


@pytest.mark.parametrize("name", [IMAGE_GUARD, ALLOWLIST_GUARD])
def test_every_validation_decides_some_case(celpy, name):
    """The mutation check, kept, for both policies: with a validation replaced by `true`,
    some case the table (CASES, ALLOWLIST_CASES) expects that rule to deny is admitted, and
    none is denied by it any more."""
    rules, denials = {
        IMAGE_GUARD: (RULES, _image_guard_denials),
        ALLOWLIST_GUARD: (ALLOWLIST_RULES, _allowlist_guard_denials),
    }[name]
    objs = cluster_objects(name)
    vap = objs["ValidatingAdmissionPolicy"]
    assert len(vap["spec"]["validations"]) == len(rules)
    for index, rule in enumerate(rules):
        validations = [dict(v) for v in vap["spec"]["validations"]]
        validations[index]["expression"] = "true"
        weakened = AdmissionPolicy(
            celpy,
            {**vap, "spec": {**vap["spec"], "validations": validations}},
            objs["ValidatingAdmissionPolicyBinding"],
        )
        decisions = [d for r, d in denials(weakened) if r == rule]
        assert decisions, rule
        assert any(d.allowed for d in decisions), rule
        assert not any(m.startswith(rules[rule]) for d in decisions for m in d.messages), rule


def test_a_missing_key_data_or_configmap_denies(policy):
    """Fail closed: no allow-list admits no container that can read the Secret (the preflight,
    run locally, accepts every image then); a missing ConfigMap admits no Pod at all."""
    no_key = {**params(None), "data": {"other": DEFAULT}}
    for cm in (params(None), no_key):
        decision = policy.admit(REFERENCING, cm)
        assert not decision.allowed and "empty or missing" in decision.message
        decision = policy.admit(kfp_pod(), cm)
        assert decision.message.startswith(RULES["readers"] + f"main ({QUANTUM}); ")
        assert policy.admit(pod(container(EVIL)), cm).allowed  # no reference: not its concern
    assert not policy.admit(REFERENCING, None).allowed
    assert not policy.admit(pod(container(QUANTUM)), None).allowed  # parameterNotFoundAction


def test_updates_are_checked(policy):
    cm = params(DEFAULT)
    assert policy.admit(REFERENCING, cm, "UPDATE", old=REFERENCING).allowed
    swapped = pod(container(EVIL, env=True))  # a container's image is mutable in place
    assert not policy.admit(swapped, cm, "UPDATE", old=REFERENCING).allowed
    sidecar = pod(container(QUANTUM, env=True), container(EVIL, name="b"))
    assert policy.admit(sidecar, cm, "UPDATE", old=sidecar).allowed
    # volumes and mounts are immutable, but an image of a reader is not
    task = kfp_pod()
    task["spec"]["containers"][1]["image"] = EVIL
    assert not policy.admit(task, cm, "UPDATE", old=kfp_pod()).allowed


def test_a_kfp_task_pod_needs_no_infrastructure_image_on_the_list(policy):
    """The quantum step's Pod on KFP/Argo: only ``main`` reads the Secret, so the default
    allow-list (manifests/base) admits it, and the preflight, which checks ``quantum_image``
    against the same list, accepts no executor or launcher image."""
    [cm] = [
        o
        for o in render("dev")
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == image_policy.ALLOWLIST_CONFIGMAP
    ]
    decision = policy.admit(kfp_pod(), cm)
    assert decision.allowed, decision.message
    assert [str(c["name"]) for c in decision.variables["readers"]] == ["main"]
    allowed = image_policy.allowed_images(cm["data"][KEY])
    for image in (ARGOEXEC, LAUNCHER):
        assert image in decision.variables["disallowedImages"]
        assert not _python_allows(allowed, image)


# --- parity with the pipeline's preflight ------------------------------------------------

ALLOW_LISTS = [
    "ghcr.io/qubeflow/",
    "ghcr.io/qubeflow",
    "ghcr.io/qubeflow/quantum",
    "ghcr.io/qubeflow/qubeflow-quantum:",
    "ghcr.io/qubeflow/qubeflow-quantum@",
    f"ghcr.io/qubeflow/qubeflow-quantum@{DIGEST}",
    " ghcr.io/qubeflow/qubeflow-quantum:0.1.0 , docker.io/acme/q:2 ,",
    ",,ghcr.io/qubeflow/qubeflow-quantum:0.1.0,,",
    "\tghcr.io/qubeflow/\n, quay.io/acme/q@\u00a0",
    "registry.example.com:5000/",
    "registry.example.com:",
    "docker.io/acme/q:2,docker.io/acme/",
    "*",
    "ghcr.io/*",
    " , ",  # empty: the preflight accepts everything (local), the cluster nothing
    "",
]
IMAGES = [
    QUANTUM,
    f"ghcr.io/qubeflow/qubeflow-quantum@{DIGEST}",
    f"ghcr.io/qubeflow/qubeflow-quantum@{OTHER_DIGEST}",
    "ghcr.io/qubeflow/qubeflow-quantum",
    "ghcr.io/qubeflow/quantum",
    "ghcr.io/qubeflow/quantum-evil:1",
    "ghcr.io/qubeflow",
    "ghcr.io/qubeflow-evil/x:1",
    "GHCR.IO/qubeflow/x:1",
    "docker.io/acme/q:2",
    "docker.io/acme/q:20",
    "docker.io/acme/other:1",
    "quay.io/acme/q@sha256:00",
    "registry.example.com:5000/q:1",
    "registry.example.com/q:1",
    "*",
    EVIL,
]


def _python_allows(allowed: list[str], image: str) -> bool:
    try:
        image_policy.check_quantum_image(image, allowed)
    except ConfigError:
        return False
    return True


# the ways the KFP task's main container can read the Secret (the pipeline uses the first)
READING = [
    (lambda image: container(image, env=True), ()),
    (lambda image: container(image, env_from=True), ()),
    (lambda image: container(image, mounts=("ibm",)), (SECRET_VOLUME,)),
    (lambda image: container(image, mounts=("creds",)), (PROJECTED_VOLUME,)),
]


@pytest.mark.parametrize("raw", ALLOW_LISTS, ids=repr)
def test_the_cel_decision_equals_check_quantum_image(policy, raw):
    """Per container that reads the Secret (a KFP task's main; Argo's and KFP's own containers
    next to it read nothing, except wait for a mounted secret volume, so it runs main's image
    here): the policy admits it exactly when the preflight would accept its image."""
    allowed = image_policy.allowed_images(raw)
    for n, image in enumerate(IMAGES):
        make, volumes = READING[n % len(READING)]
        task = kfp_pod(make(image), volumes=volumes)
        if volumes:  # wait mirrors the mount, so it reads the secret too
            task["spec"]["containers"][0]["image"] = image
        decision = policy.admit(task, params(raw))
        assert list(decision.variables["allowed"]) == allowed  # allowed_images, in CEL
        if allowed:
            assert decision.allowed is _python_allows(allowed, image), (raw, image)
        else:  # the cluster fails closed where the local run accepts every image
            assert _python_allows(allowed, image) and not decision.allowed, image
        if not decision.allowed:
            readers = ["wait", "main"] if volumes else ["main"]
            named = ", ".join(f"{r} ({image})" for r in readers)
            assert decision.message.startswith(RULES["readers"] + named + "; "), decision.message


def test_the_parity_table_exercises_both_outcomes(policy):
    outcomes = {
        _python_allows(image_policy.allowed_images(raw), image)
        for raw in ALLOW_LISTS
        if image_policy.allowed_images(raw)
        for image in IMAGES
    }
    assert outcomes == {True, False}


# --- the manifests -----------------------------------------------------------------------


def test_the_cluster_directory_validates_strictly():
    import kubernetes_validate

    objs = cluster_objects()
    assert set(objs) == {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    # every rendered object is validated below: both policies and both bindings
    kinds = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    assert sorted((d["metadata"]["name"], d["kind"]) for d in rendered_cluster()) == [
        (name, kind) for name in (ALLOWLIST_GUARD, IMAGE_GUARD) for kind in kinds
    ]
    for obj in rendered_cluster():
        assert "namespace" not in obj["metadata"]  # cluster-scoped
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "qubeflow"
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    broken = {**objs["ValidatingAdmissionPolicy"]}
    broken["spec"] = {**broken["spec"], "failurPolicy": "Fail"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_policy_matches_pod_writes_and_fails_closed():
    objs = cluster_objects()
    spec = objs["ValidatingAdmissionPolicy"]["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["paramKind"] == {"apiVersion": "v1", "kind": "ConfigMap"}
    [rule] = spec["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == [""] and rule["apiVersions"] == ["v1"]
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    assert set(rule["resources"]) == {"pods", "pods/ephemeralcontainers"}
    assert all("messageExpression" in v for v in spec["validations"])
    binding = objs["ValidatingAdmissionPolicyBinding"]["spec"]
    assert binding["policyName"] == objs["ValidatingAdmissionPolicy"]["metadata"]["name"]
    assert binding["validationActions"] == ["Deny"]
    assert binding["matchResources"]["namespaceSelector"] == {"matchLabels": GUARD_LABEL}
    # the ConfigMap of the Pod's own namespace: no namespace, no selector
    assert binding["paramRef"] == {
        "name": image_policy.ALLOWLIST_CONFIGMAP,
        "parameterNotFoundAction": "Deny",
    }


def test_the_policy_guards_the_pipelines_secret_with_the_preflights_allow_list(policy):
    decision = policy.admit(pod(container(QUANTUM)), params(""))
    assert decision.variables["secretName"] == SECRET == "qubeflow-ibm-quantum"
    assert SECRET in SECRET_NAMES  # the template in manifests/secrets
    assert decision.variables["configMapName"] == image_policy.ALLOWLIST_CONFIGMAP
    assert decision.variables["allowListKey"] == image_policy.ALLOWLIST_ENV


def test_the_overlays_allow_list_is_the_policys_parameter(policy):
    """The ConfigMap the overlays deploy (fixed name) is the binding's parameter, and admits
    the project's quantum image."""
    for overlay in ("dev", "prod"):
        [cm] = [
            o
            for o in render(overlay)
            if o["kind"] == "ConfigMap"
            and o["metadata"]["name"] == image_policy.ALLOWLIST_CONFIGMAP
        ]
        assert policy.admit(pod(container(QUANTUM, env=True)), cm).allowed
        assert not policy.admit(pod(container(EVIL, env=True)), cm).allowed


def test_the_cluster_directory_is_not_synced_by_the_namespaced_apps():
    for app in (MANIFESTS / "argocd").glob("*.yaml"):
        path = yaml.safe_load(app.read_text())["spec"]["source"]["path"]
        assert path.startswith("manifests/overlays/"), app
    for kustomization in MANIFESTS.glob("*/**/kustomization.yaml"):
        resources = yaml.safe_load(kustomization.read_text()).get("resources", [])
        for resource in resources:
            assert (kustomization.parent / resource).resolve() != CLUSTER, kustomization


# --- the allow-list's own guard ----------------------------------------------------------

ALLOWLIST = image_policy.ALLOWLIST_CONFIGMAP
ARGOCD_CONTROLLER = "system:serviceaccount:argocd:argocd-application-controller"
FLUX_CONTROLLER = "system:serviceaccount:flux-system:kustomize-controller"
SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:qubeflow", "system:authenticated"]
EDITOR = ("system:serviceaccount:qubeflow:default-editor", SA_GROUPS)  # Kubeflow's, runs' too
CONTRIBUTOR = ("alice@example.com", ["kubeflow-users", "system:authenticated"])  # a profile's
ARGOCD = (ARGOCD_CONTROLLER, ["system:serviceaccounts", "system:serviceaccounts:argocd"])
ADMIN = ("kubernetes-admin", ["system:masters", "system:authenticated"])
NAMESPACE_CONTROLLER = ("system:serviceaccount:kube-system:namespace-controller", SA_GROUPS)


@pytest.fixture(scope="module")
def allowlist_guard(celpy) -> AdmissionPolicy:
    objs = cluster_objects(ALLOWLIST_GUARD)
    return AdmissionPolicy(
        celpy, objs["ValidatingAdmissionPolicy"], objs["ValidatingAdmissionPolicyBinding"]
    )


def configmap(name: str = ALLOWLIST, raw: str = DEFAULT) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "qubeflow"},
        "data": {KEY: raw},
    }


def write(
    who: tuple[str, list[str]],
    operation: str,
    name: str = ALLOWLIST,
    collection: bool = False,
    terminating: bool = False,
) -> dict:
    """The request of ``who`` that creates, updates (adding their own image) or deletes the
    ConfigMap ``name``: on DELETE ``object`` is null and ``oldObject`` the ConfigMap; an
    object a DELETECOLLECTION (``kubectl delete configmaps --all``) removes is admitted as a
    DELETE with an empty request name."""
    assert not collection or operation == "DELETE"
    new, old = configmap(name, f"{DEFAULT},{EVIL}"), configmap(name)
    return {
        "obj": None if operation == "DELETE" else new,
        "old": None if operation == "CREATE" else old,
        "operation": operation,
        "user": who,
        "name": "" if collection else None,
        "namespace_phase": "Terminating" if terminating else "Active",
    }


WRITES = ["CREATE", "UPDATE", "DELETE"]
# The lead of the guard's message (its only validation); the rest names who may write.
ALLOWLIST_RULES = {"writers": f"ConfigMap {ALLOWLIST} is the quantum image allow-list: "}
NOT_MATCHED = "not matched"

# (id, request, None if admitted, NOT_MATCHED if no rule matches it, else the rule that denies)
ALLOWLIST_CASES = [
    *((f"namespace editor {op}", write(EDITOR, op), "writers") for op in WRITES),
    ("namespace editor DELETECOLLECTION", write(EDITOR, "DELETE", collection=True), "writers"),
    *((f"profile contributor {op}", write(CONTRIBUTOR, op), "writers") for op in WRITES),
    *((f"Argo CD's controller {op}", write(ARGOCD, op), None) for op in WRITES),
    ("Argo CD's controller DELETECOLLECTION", write(ARGOCD, "DELETE", collection=True), None),
    *((f"system:masters member {op}", write(ADMIN, op), None) for op in WRITES),
    # a namespace editor can create a service account of that name in its own namespace
    (
        "a service account named like Argo CD's in the run's namespace",
        write(
            ("system:serviceaccount:qubeflow:argocd-application-controller", SA_GROUPS), "UPDATE"
        ),
        "writers",
    ),
    ("a user named system:masters", write(("system:masters", SA_GROUPS), "UPDATE"), "writers"),
    (
        "a group named like Argo CD's controller",
        write((EDITOR[0], [*SA_GROUPS, ARGOCD_CONTROLLER]), "UPDATE"),
        "writers",
    ),
    ("Flux's controller, not configured", write((FLUX_CONTROLLER, SA_GROUPS), "UPDATE"), "writers"),
    ("no username", write(("", ["system:authenticated"]), "UPDATE"), "writers"),
    # other ConfigMaps: CREATE/UPDATE are not matched; every DELETE is, and admitted
    *(
        (f"another ConfigMap, editor {op}", write(EDITOR, op, "cfg"), NOT_MATCHED)
        for op in WRITES[:2]
    ),
    ("another ConfigMap, editor DELETE", write(EDITOR, "DELETE", "cfg"), None),
    (
        "another ConfigMap, editor DELETECOLLECTION",
        write(EDITOR, "DELETE", "cfg", collection=True),
        None,
    ),
    (
        "an old name of the allow-list is not guarded",
        write(EDITOR, "UPDATE", "qubeflow-quantum-images-old"),
        NOT_MATCHED,
    ),
    # deleting the namespace: its controller deletes every ConfigMap (DELETECOLLECTION)
    (
        "the namespace controller in a terminating namespace",
        write(NAMESPACE_CONTROLLER, "DELETE", collection=True, terminating=True),
        None,
    ),
    ("the namespace controller otherwise", write(NAMESPACE_CONTROLLER, "DELETE"), "writers"),
    (
        "namespace editor UPDATE in a terminating namespace",
        write(EDITOR, "UPDATE", terminating=True),
        "writers",
    ),
]


def writers_message(who: str, operation: str, writers: str = ARGOCD_CONTROLLER) -> str:
    return (
        f"{ALLOWLIST_RULES['writers']}{who} may not {operation} it; it changes through Git,"
        f" applied by the GitOps controller ({writers}), or by a member of system:masters"
    )


@pytest.mark.parametrize(
    ("request_", "expected"), [c[1:] for c in ALLOWLIST_CASES], ids=[c[0] for c in ALLOWLIST_CASES]
)
def test_only_the_gitops_controller_and_cluster_admins_write_the_allow_list(
    allowlist_guard, request_, expected
):
    decision = allowlist_guard.review(**request_)
    assert decision.matched is (expected != NOT_MATCHED)
    if expected in (None, NOT_MATCHED):
        assert decision.allowed, decision.message
        return
    assert not decision.allowed
    who = request_["user"][0] or "(no username)"
    assert decision.messages == [writers_message(who, request_["operation"])]


def test_the_allow_list_guard_names_the_requester_and_the_way_through_git(allowlist_guard):
    for operation in WRITES:
        decision = allowlist_guard.review(**write(EDITOR, operation))
        assert not decision.allowed
        assert decision.message == (
            f"ConfigMap qubeflow-quantum-images is the quantum image allow-list:"
            f" system:serviceaccount:qubeflow:default-editor may not {operation} it; it changes"
            " through Git, applied by the GitOps controller"
            " (system:serviceaccount:argocd:argocd-application-controller), or by a member of"
            " system:masters"
        )
        # on DELETE `object` is null: the expressions read the name from the request
        assert str(decision.variables["target"]) == ALLOWLIST
    collection = allowlist_guard.review(**write(EDITOR, "DELETE", collection=True))
    assert str(collection.variables["target"]) == ALLOWLIST  # from oldObject


def test_the_writers_are_one_parameter_free_line_a_cluster_admin_edits(celpy):
    """`writers` is a literal list (no params, no request): another GitOps controller is one
    edited line, e.g. Flux's kustomize-controller."""
    objs = cluster_objects(ALLOWLIST_GUARD)
    vap = objs["ValidatingAdmissionPolicy"]
    variables = {v["name"]: v["expression"] for v in vap["spec"]["variables"]}
    env = celpy.Environment()

    def literal(name: str) -> list[str]:  # evaluated with nothing bound: no params, no request
        return [str(item) for item in env.program(env.compile(variables[name])).evaluate({})]

    assert literal("writers") == [ARGOCD_CONTROLLER]
    assert literal("adminGroups") == ["system:masters"]
    # the writer is named once in the policy's CEL, on one line of the file
    expressions = [v["expression"] for v in vap["spec"]["variables"]]
    expressions += [e for v in vap["spec"]["validations"] for e in v.values()]
    assert sum(ARGOCD_CONTROLLER in e for e in expressions) == 1
    source = (CLUSTER / "quantum-allowlist-guard.yaml").read_text().splitlines()
    [line] = [s for s in source if ARGOCD_CONTROLLER in s and not s.lstrip().startswith("#")]
    assert line.strip() == f"expression: \"['{ARGOCD_CONTROLLER}']\""
    # Flux instead of Argo CD: edit that line
    flux_vars = [
        {**v, "expression": f"['{FLUX_CONTROLLER}']"} if v["name"] == "writers" else v
        for v in vap["spec"]["variables"]
    ]
    flux = AdmissionPolicy(
        celpy,
        {**vap, "spec": {**vap["spec"], "variables": flux_vars}},
        objs["ValidatingAdmissionPolicyBinding"],
    )
    for operation in WRITES:
        assert flux.review(**write((FLUX_CONTROLLER, SA_GROUPS), operation)).allowed
        denied = flux.review(**write(ARGOCD, operation))
        assert denied.message == writers_message(ARGOCD_CONTROLLER, operation, FLUX_CONTROLLER)
        assert flux.review(**write(ADMIN, operation)).allowed


def test_the_writer_is_the_controller_of_the_argocd_applications():
    """The service account is Argo CD's application controller in the namespace the
    Applications of manifests/argocd are applied to."""
    for app in (MANIFESTS / "argocd").glob("*.yaml"):
        namespace = yaml.safe_load(app.read_text())["metadata"]["namespace"]
        controller = f"system:serviceaccount:{namespace}:argocd-application-controller"
        assert controller == ARGOCD_CONTROLLER


def test_the_allow_list_guard_matches_that_configmap_and_fails_closed():
    """The rules as rendered (the harness's ``matches`` models them): the allow-list by name
    for CREATE/UPDATE/DELETE, and every ConfigMap DELETE (a DELETECOLLECTION's objects come
    with an empty name, which no resourceNames matches); nothing else."""
    objs = cluster_objects(ALLOWLIST_GUARD)
    spec = objs["ValidatingAdmissionPolicy"]["spec"]
    assert spec["failurePolicy"] == "Fail" and "paramKind" not in spec
    named, deletes = spec["matchConstraints"]["resourceRules"]
    for rule in (named, deletes):
        assert rule["apiGroups"] == [""] and rule["apiVersions"] == ["v1"]
        assert rule["resources"] == ["configmaps"]
    assert named["resourceNames"] == [ALLOWLIST] and set(named["operations"]) == set(WRITES)
    assert "resourceNames" not in deletes and deletes["operations"] == ["DELETE"]
    assert [v["reason"] for v in spec["validations"]] == ["Forbidden"]
    assert all("messageExpression" in v for v in spec["validations"])
    binding = objs["ValidatingAdmissionPolicyBinding"]["spec"]
    assert binding == {
        "policyName": ALLOWLIST_GUARD,
        "validationActions": ["Deny"],
        "matchResources": {"namespaceSelector": {"matchLabels": GUARD_LABEL}},
    }
    # the same namespaces as the image guard, whose parameter the ConfigMap is
    image_binding = cluster_objects()["ValidatingAdmissionPolicyBinding"]["spec"]
    assert binding["matchResources"] == image_binding["matchResources"]
    assert image_binding["paramRef"]["name"] == ALLOWLIST
    names = {v["name"]: v["expression"] for v in spec["variables"]}
    assert names["configMapName"] == f"'{ALLOWLIST}'"
