"""KFP components that fan the quantum features out into row tiles (``dsl.ParallelFor``)
and assemble them again (thin wrappers over :mod:`components.steps.kernel_tiles.step`)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.image_refs import BASE_IMAGE, QUANTUM_IMAGE


@dsl.component(base_image=QUANTUM_IMAGE, install_kfp_package=False)
def plan_kernel_tiles(
    data_lineage: Input[Artifact],
    quantum_enabled: bool,
    feature_map: str,
    reps: int,
    entanglement: str,
    quantum_backend: str,
    seed: int,
    quantum_fallback: str,
    quantum_max_retries: int,
    quantum_max_shots: int,
    quantum_max_circuits: int,
    quantum_max_seconds: float,
    quantum_max_memory_mb: float,
    quantum_method: str,
    nystroem_landmarks: int,
    exact_max_rows: int,
    kernel_fanout_min_seconds: float,
    kernel_tile_rows: int,
) -> NamedTuple("QuantumRoute", [("route", str), ("tiles", list)]):
    """The run's route — "fanout" (row tiles of the quantum features, when the method's
    estimated time makes them pay), "single" (the quantum step does the work) or "classical"
    (quantum step off) — and the tiles for "fanout"."""
    params = dict(locals())  # the pipeline parameters this step received, by name
    from collections import namedtuple

    from components.runtime import task
    from components.steps.kernel_tiles.step import plan, route
    from components.steps.train_quantum.step import OPTION_PARAMETERS, quantum_options

    with task("plan-kernel-tiles") as log:
        tiles = []
        if quantum_enabled:
            options = quantum_options(**{k: params[k] for k in OPTION_PARAMETERS})
            tiles = plan(
                data_lineage.path,
                options,
                min_seconds=kernel_fanout_min_seconds,
                tile_rows=kernel_tile_rows,
            )
        chosen = route(quantum_enabled, tiles)
        log.info(
            "quantum route: %s%s",
            chosen,
            f" ({len(tiles)} tile(s) of up to {kernel_tile_rows} rows)"
            if chosen == "fanout"
            else "",
        )
        return namedtuple("QuantumRoute", ["route", "tiles"])(
            chosen, [t.to_dict() for t in tiles] if chosen == "fanout" else []
        )


@dsl.component(base_image=QUANTUM_IMAGE, install_kfp_package=False)
def compute_kernel_tile(
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    preprocessor: Input[Model],
    data_lineage: Input[Artifact],
    tile: dict,
    feature_map: str,
    reps: int,
    entanglement: str,
    quantum_backend: str,
    seed: int,
    block: Output[Artifact],
):
    """One tile: its rows' quantum features (rows x m kernel vs. landmarks, or rows x 3q)."""
    from components.quantum.tiles import KernelTile, save_block
    from components.runtime import task
    from components.steps.kernel_tiles.step import compute

    with task("compute-kernel-tile"):
        spec = KernelTile.from_dict(tile)
        values = compute(
            spec,
            train_path=train_data.path,
            test_path=test_data.path,
            preprocessor_path=preprocessor.path,
            lineage_path=data_lineage.path,
            feature_map=feature_map,
            reps=reps,
            entanglement=entanglement,
            quantum_backend=quantum_backend,
            seed=seed,
        )
        save_block(block.path, spec, values)
        block.metadata.update({"part": spec.part, "start": spec.start, "stop": spec.stop})


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def assemble_kernel(
    blocks: Input[list[Artifact]], data_lineage: Input[Artifact], kernel: Output[Artifact]
):
    """The train and test feature blocks from every tile (or a "no fan-out" marker)."""
    from components.quantum.tiles import load_block, save_kernel
    from components.runtime import task
    from components.steps.kernel_tiles.step import assemble_blocks

    with task("assemble-kernel") as log:
        parts = [load_block(b.path) for b in blocks]
        kernels = assemble_blocks(parts, data_lineage.path)
        save_kernel(kernel.path, kernels, len(parts))
        kernel.metadata.update({"fanout": kernels is not None, "tiles": len(parts)})
        if kernels is not None:
            log.info(
                "assembled %d tiles: train %s, test %s",
                len(parts),
                kernels[0].shape,
                kernels[1].shape,
            )
