"""KFP component: validate the promotion policy before any training starts (thin wrapper
over :func:`components.registry.policy.load_policy`)."""

from kfp import dsl
from kfp.dsl import Artifact, Output

from components.image_refs import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def check_promotion_policy(
    promotion_policy: str, promotion_mode: str, policy: Output[Artifact]
) -> str:
    """Load and validate the promotion policy file (``promotion_mode`` overrides its mode);
    write it normalised, so the registry step applies exactly what was checked. Returns the
    policy hash."""
    import json
    from pathlib import Path

    from components.registry.policy import load_policy
    from components.runtime import task

    with task("check-promotion-policy"):
        loaded = load_policy(promotion_policy, mode=promotion_mode)
        Path(policy.path).write_text(json.dumps(loaded.to_dict(), indent=2, sort_keys=True))
        policy.metadata.update(
            {"policy_hash": loaded.hash, "mode": loaded.mode, "rules": loaded.summary()}
        )
        print(
            f"[qubeflow] promotion policy {loaded.hash} (mode {loaded.mode}): {loaded.summary()}",
            flush=True,
        )
        return loaded.hash
