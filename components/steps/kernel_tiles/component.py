"""KFP components that fan the exact kernel out into row tiles (``dsl.ParallelFor``) and
assemble it again (thin wrappers over :mod:`components.steps.kernel_tiles.step`)."""


from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.image_refs import BASE_IMAGE, QUANTUM_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def plan_kernel_tiles(data_lineage: Input[Artifact], quantum_backend: str,
                      kernel_fanout_min_rows: int, kernel_tile_rows: int) -> list[dict]:
    """Row tiles of the train Gram and test kernel; one "none" tile when not fanning out."""
    from components.runtime import task
    from components.steps.kernel_tiles.step import plan, read_sizes

    with task("plan-kernel-tiles") as log:
        tiles = plan(data_lineage.path, quantum_backend, min_rows=kernel_fanout_min_rows,
                     tile_rows=kernel_tile_rows)
        n_train, n_test = read_sizes(data_lineage.path)
        log.info("kernel plan: %d tile(s) of up to %d rows for %d train x %d test rows%s",
                 len(tiles), kernel_tile_rows, n_train, n_test,
                 "" if tiles[0].part != "none" else " (no fan-out)")
        return [t.to_dict() for t in tiles]


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
    block: Output[Artifact],
):
    """One tile: its rows' kernel values against every train row."""
    from components.quantum.tiles import KernelTile, save_block
    from components.runtime import task
    from components.steps.kernel_tiles.step import compute

    with task("compute-kernel-tile"):
        spec = KernelTile.from_dict(tile)
        values = compute(spec, train_path=train_data.path, test_path=test_data.path,
                         preprocessor_path=preprocessor.path, lineage_path=data_lineage.path,
                         feature_map=feature_map, reps=reps, entanglement=entanglement,
                         quantum_backend=quantum_backend)
        save_block(block.path, spec, values)
        block.metadata.update({"part": spec.part, "start": spec.start, "stop": spec.stop})


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def assemble_kernel(blocks: Input[list[Artifact]], data_lineage: Input[Artifact],
                    kernel: Output[Artifact]):
    """The train Gram and test kernel from every tile (or a "no fan-out" marker)."""
    from components.quantum.tiles import load_block, save_kernel
    from components.runtime import task
    from components.steps.kernel_tiles.step import assemble_blocks

    with task("assemble-kernel") as log:
        parts = [load_block(b.path) for b in blocks]
        kernels = assemble_blocks(parts, data_lineage.path)
        save_kernel(kernel.path, kernels, len(parts))
        kernel.metadata.update({"fanout": kernels is not None, "tiles": len(parts)})
        if kernels is not None:
            log.info("assembled %d tiles: train Gram %s, test kernel %s", len(parts),
                     kernels[0].shape, kernels[1].shape)
