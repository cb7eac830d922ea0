"""KFP component: the run's preflight, before any data is read or anything trained: the
promotion policy is valid (:func:`components.registry.policy.load_policy`), the quantum image
is allowed (:func:`components.quantum.image_policy.check_quantum_image`) and the tracking
server answers, accepts the run's account and reaches its artifact store
(:func:`components.registry.preflight.check_tracking_server`)."""

from kfp import dsl
from kfp.dsl import Artifact, Output

from components.image_refs import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def check_promotion_policy(
    promotion_policy: str,
    promotion_mode: str,
    mlflow_tracking_uri: str,
    experiment_name: str,
    quantum_image: str,
    policy: Output[Artifact],
) -> str:
    """Load and validate the promotion policy file (``promotion_mode`` overrides its mode);
    write it normalised, so the registry step applies exactly what was checked. Then check
    that ``quantum_image`` is on the cluster's allow-list (the quantum step, which gets the IBM
    Quantum token, runs after this in that image) and that the tracking server answers,
    accepts the account the register step will use and reaches its artifact store (listing
    ``experiment_name``'s artifacts). Returns the policy hash."""
    import json
    from pathlib import Path

    from components.quantum.image_policy import check_quantum_image
    from components.registry.policy import load_policy
    from components.registry.preflight import check_tracking_server
    from components.runtime import task

    with task("check-promotion-policy") as log:
        loaded = load_policy(promotion_policy, mode=promotion_mode)
        log.info("%s", check_quantum_image(quantum_image))
        log.info("tracking server: %s", check_tracking_server(mlflow_tracking_uri, experiment_name))
        Path(policy.path).write_text(json.dumps(loaded.to_dict(), indent=2, sort_keys=True))
        policy.metadata.update(
            {"policy_hash": loaded.hash, "mode": loaded.mode, "rules": loaded.summary()}
        )
        print(
            f"[qubeflow] promotion policy {loaded.hash} (mode {loaded.mode}): {loaded.summary()}",
            flush=True,
        )
        return loaded.hash
