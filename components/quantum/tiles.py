"""The kernel cut into row tiles, so the pipeline can fan it out (``dsl.ParallelFor``: one
task, i.e. one pod, per tile) and assemble it again.

A tile is a block of rows of the train Gram matrix or of the test x train kernel, against all
train rows. Each tile task computes its rows' statevectors and the train statevectors (cheap:
linear in N) and one matrix product (the quadratic part). Assembly mirrors the Gram's upper
triangle into the lower one and sets the unit diagonal, as the single-process kernel does.

Fan-out applies to exact backends above ``min_rows`` train rows; otherwise the plan is one
"none" tile (KFP's local runner cannot run a zero-iteration ParallelFor) and the quantum step
computes the kernel itself.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from components.errors import ConfigError

log = logging.getLogger(__name__)

PARTS = ("train", "test", "none")
NO_FANOUT = "none"


@dataclass(frozen=True)
class KernelTile:
    part: str  # "train": rows of the Gram; "test": rows of test x train; "none": no fan-out
    start: int = 0
    stop: int = 0
    index: int = 0
    count: int = 1

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> KernelTile:
        """From a ParallelFor item (KFP passes JSON numbers, so ints may arrive as floats)."""
        part = str(spec.get("part", ""))
        if part not in PARTS:
            raise ConfigError(f"unknown tile part {part!r}", field="tile")
        return cls(part, *(int(spec.get(k, 0)) for k in ("start", "stop", "index", "count")))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def rows(self) -> int:
        return self.stop - self.start


def plan_tiles(n_train: int, n_test: int, *, exact: bool, min_rows: int,
               tile_rows: int) -> list[KernelTile]:
    """Row tiles covering the train Gram and the test kernel, or the single "none" tile when
    the kernel is small (``n_train < min_rows``; ``min_rows=0`` disables fan-out) or the
    backend is shot-based (its step groups circuits into jobs itself)."""
    if tile_rows < 1:
        raise ConfigError(f"must be >= 1, got {tile_rows}", field="kernel_tile_rows")
    if min_rows < 0:
        raise ConfigError(f"must be >= 0 (0 disables fan-out), got {min_rows}",
                          field="kernel_fanout_min_rows")
    if not exact or min_rows == 0 or n_train < min_rows:
        return [KernelTile(NO_FANOUT)]
    spans = [("train", s, min(n_train, s + tile_rows)) for s in range(0, n_train, tile_rows)]
    spans += [("test", s, min(n_test, s + tile_rows)) for s in range(0, n_test, tile_rows)]
    return [KernelTile(p, a, b, i, len(spans)) for i, (p, a, b) in enumerate(spans)]


def compute_tile(tile: KernelTile, backend: Any, fmap: Any, x_train: np.ndarray,
                 x_test: np.ndarray) -> np.ndarray:
    """Rows ``tile.start:tile.stop`` of the tile's part against every train row."""
    from components.quantum.statevector import fidelity_kernel

    t0 = time.perf_counter()
    rows = (x_train if tile.part == "train" else x_test)[tile.start:tile.stop]
    block = fidelity_kernel(backend.statevectors(fmap, rows),
                            backend.statevectors(fmap, x_train))
    log.info("kernel tile %d/%d: %s rows %d:%d x %d train rows (%.1f MB) in %.2f s",
             tile.index + 1, tile.count, tile.part, tile.start, tile.stop, len(x_train),
             block.nbytes / 2**20, time.perf_counter() - t0)
    return block


def save_block(path: str | Path, tile: KernelTile, block: np.ndarray) -> None:
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    (root / "tile.json").write_text(json.dumps(tile.to_dict()))
    if tile.part != NO_FANOUT:
        np.save(root / "block.npy", block)


def load_block(path: str | Path) -> tuple[KernelTile, np.ndarray | None]:
    root = Path(path)
    tile = KernelTile.from_dict(json.loads((root / "tile.json").read_text()))
    block = np.load(root / "block.npy") if tile.part != NO_FANOUT else None
    return tile, block


def assemble(blocks: list[tuple[KernelTile, np.ndarray | None]], n_train: int, n_test: int
             ) -> tuple[np.ndarray, np.ndarray] | None:
    """The train Gram and test kernel from every tile, or None when there was no fan-out."""
    real = [(t, b) for t, b in blocks if t.part != NO_FANOUT]
    if not real:
        return None
    gram = np.full((n_train, n_train), np.nan)
    test = np.full((n_test, n_train), np.nan)
    for tile, block in real:
        (gram if tile.part == "train" else test)[tile.start:tile.stop] = block
    if np.isnan(gram).any() or np.isnan(test).any():
        raise ValueError(f"kernel tiles do not cover the matrices ({len(real)} tiles for "
                         f"{n_train} train and {n_test} test rows)")
    upper = np.triu(gram, 1)
    gram = upper + upper.T
    np.fill_diagonal(gram, 1.0)
    return gram, test


def save_kernel(path: str | Path, kernels: tuple[np.ndarray, np.ndarray] | None,
                tiles: int) -> None:
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    (root / "kernel.json").write_text(json.dumps({"fanout": kernels is not None,
                                                  "tiles": tiles}))
    if kernels is not None:
        np.save(root / "train_gram.npy", kernels[0])
        np.save(root / "test_kernel.npy", kernels[1])


def load_kernel(path: str | Path | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The assembled (train Gram, test kernel), or None (no fan-out, or no path)."""
    if not path or not (Path(path) / "kernel.json").is_file():
        return None
    root = Path(path)
    if not json.loads((root / "kernel.json").read_text())["fanout"]:
        return None
    return np.load(root / "train_gram.npy"), np.load(root / "test_kernel.npy")
