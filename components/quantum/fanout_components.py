"""KFP components that fan the exact kernel out into row tiles (``dsl.ParallelFor``) and
assemble it again (thin wrappers over ``components.quantum.tiles``)."""


from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.images import BASE_IMAGE, QUANTUM_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def plan_kernel_tiles(data_lineage: Input[Artifact], quantum_backend: str,
                      kernel_fanout_min_rows: int, kernel_tile_rows: int) -> list[dict]:
    """Row tiles of the train Gram and test kernel; one "none" tile when not fanning out."""
    import json
    from pathlib import Path

    from components.quantum.backends import is_exact_backend
    from components.quantum.tiles import plan_tiles
    from components.runtime import task

    with task("plan-kernel-tiles") as log:
        lineage = json.loads(Path(data_lineage.path).read_text())
        tiles = plan_tiles(lineage["n_train"], lineage["n_test"],
                           exact=is_exact_backend(quantum_backend),
                           min_rows=kernel_fanout_min_rows, tile_rows=kernel_tile_rows)
        log.info("kernel plan: %d tile(s) of up to %d rows for %d train x %d test rows%s",
                 len(tiles), kernel_tile_rows, lineage["n_train"], lineage["n_test"],
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
    from components.data.prepare import load_prepared
    from components.quantum.backends import get_backend
    from components.quantum.feature_maps import FeatureMap
    from components.quantum.tiles import KernelTile, compute_tile, save_block
    from components.runtime import task

    with task("compute-kernel-tile"):
        spec = KernelTile.from_dict(tile)
        values = None
        if spec.part != "none":
            split, pre, _ = load_prepared(train_data.path, test_data.path, preprocessor.path,
                                          data_lineage.path)
            x_train = pre.transform(split.xy("train")[0])
            x_test = pre.transform(split.xy("test")[0])
            fmap = FeatureMap(kind=feature_map, n_qubits=x_train.shape[1], reps=reps,
                              entanglement=entanglement)
            values = compute_tile(spec, get_backend(quantum_backend), fmap, x_train, x_test)
        save_block(block.path, spec, values)
        block.metadata.update({"part": spec.part, "start": spec.start, "stop": spec.stop})


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def assemble_kernel(blocks: Input[list[Artifact]], data_lineage: Input[Artifact],
                    kernel: Output[Artifact]):
    """The train Gram and test kernel from every tile (or a "no fan-out" marker)."""
    import json
    from pathlib import Path

    from components.quantum.tiles import assemble, load_block, save_kernel
    from components.runtime import task

    with task("assemble-kernel") as log:
        lineage = json.loads(Path(data_lineage.path).read_text())
        parts = [load_block(b.path) for b in blocks]
        kernels = assemble(parts, lineage["n_train"], lineage["n_test"])
        save_kernel(kernel.path, kernels, len(parts))
        kernel.metadata.update({"fanout": kernels is not None, "tiles": len(parts)})
        if kernels is not None:
            log.info("assembled %d tiles: train Gram %s, test kernel %s", len(parts),
                     kernels[0].shape, kernels[1].shape)
