"""The quantum feature work cut into row tiles, so the pipeline can fan it out
(``dsl.ParallelFor``: one task, i.e. one pod, per tile) and assemble it again.

Fan-out applies to the methods whose cost is linear in rows — ``nystroem`` (a tile ships its
rows' kernel against the ``m`` landmarks, rows × m float32) and ``projected`` (rows × 3q) —
never to N×N blocks: the ``fidelity`` Gram is for small data and runs in one process. Each
tile computes only its own rows' states plus the m landmark states (cheap); no tile
recomputes every train state. The plan fans out only when the method's estimated kernel time
(:mod:`.methods`, from rates measured on the machine) reaches ``min_seconds``, so small runs
pay no per-task overhead: their plan is one "none" tile (KFP's local runner cannot run a
zero-iteration ParallelFor) and the quantum step computes the features itself.
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
FANOUT_METHODS = ("nystroem", "projected")


@dataclass(frozen=True)
class KernelTile:
    part: str  # "train" | "test": rows of that split; "none": no fan-out
    start: int = 0
    stop: int = 0
    index: int = 0
    count: int = 1
    method: str = ""
    landmarks: int = 0

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> KernelTile:
        """From a ParallelFor item (KFP passes JSON numbers, so ints may arrive as floats)."""
        part = str(spec.get("part", ""))
        if part not in PARTS:
            raise ConfigError(f"unknown tile part {part!r}", field="tile")
        ints = (int(spec.get(k, 0)) for k in ("start", "stop", "index", "count"))
        return cls(part, *ints, str(spec.get("method", "")), int(spec.get("landmarks", 0)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def rows(self) -> int:
        return self.stop - self.start


def check_fanout_settings(min_seconds: float, tile_rows: int) -> None:
    if tile_rows < 1:
        raise ConfigError(f"must be >= 1, got {tile_rows}", field="kernel_tile_rows")
    if min_seconds < 0:
        raise ConfigError(
            f"must be >= 0 seconds (0 always fans out), got {min_seconds}",
            field="kernel_fanout_min_seconds",
        )


def plan_tiles(
    n_train: int,
    n_test: int,
    *,
    method: str,
    landmarks: int,
    estimated_seconds: float | None,
    min_seconds: float,
    tile_rows: int,
) -> list[KernelTile]:
    """Row tiles over the train and test rows, or the single "none" tile when the method does
    not fan out (``fidelity``, shot-based backends: unknown time) or its estimated time is
    below ``min_seconds``."""
    check_fanout_settings(min_seconds, tile_rows)
    worth_it = estimated_seconds is not None and estimated_seconds >= min_seconds
    if method not in FANOUT_METHODS or not worth_it or n_train + n_test <= tile_rows:
        return [KernelTile(NO_FANOUT)]
    spans = [("train", s, min(n_train, s + tile_rows)) for s in range(0, n_train, tile_rows)]
    spans += [("test", s, min(n_test, s + tile_rows)) for s in range(0, n_test, tile_rows)]
    return [
        KernelTile(p, a, b, i, len(spans), method, landmarks if method == "nystroem" else 0)
        for i, (p, a, b) in enumerate(spans)
    ]


def compute_tile(
    tile: KernelTile,
    backend: Any,
    fmap: Any,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    seed: int,
) -> np.ndarray:
    """The tile's rows as the method's features: K(rows, landmarks) for ``nystroem`` (the same
    seeded, stratified landmarks the quantum step picks), ⟨X⟩,⟨Y⟩,⟨Z⟩ for ``projected``."""
    from components.quantum.nystroem import select_landmarks
    from components.quantum.transformers import (
        kernel_against,
        reference_states,
        streamed_expectations,
    )

    t0 = time.perf_counter()
    rows = (x_train if tile.part == "train" else x_test)[tile.start : tile.stop]
    what = f"tile {tile.index + 1}/{tile.count} ({tile.part} {tile.start}:{tile.stop})"
    if tile.method == "nystroem":
        index = select_landmarks(len(x_train), tile.landmarks, y=y_train, seed=seed)
        landmark_states = reference_states(backend, fmap, x_train[index])
        block = kernel_against(backend, fmap, rows, landmark_states, what, dtype=np.float32)
    elif tile.method == "projected":
        block = streamed_expectations(backend, fmap, rows, what)
    else:
        raise ConfigError(f"tile method {tile.method!r} does not fan out", field="tile")
    log.info(
        "kernel %s: %s features %s (%.1f MB) in %.2f s",
        what,
        tile.method,
        block.shape,
        block.nbytes / 2**20,
        time.perf_counter() - t0,
    )
    return block


def save_block(path: str | Path, tile: KernelTile, block: np.ndarray | None) -> None:
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


def assemble(
    blocks: list[tuple[KernelTile, np.ndarray | None]], n_train: int, n_test: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The train and test feature blocks stacked in row order (None: no fan-out). Raises if
    the tiles do not cover every row exactly once."""
    real = sorted(
        ((t, b) for t, b in blocks if t.part != NO_FANOUT),
        key=lambda tb: (tb[0].part != "train", tb[0].start),
    )
    if not real:
        return None
    out = []
    for part, n in (("train", n_train), ("test", n_test)):
        mine = [(t, b) for t, b in real if t.part == part]
        covered = [(t.start, t.stop) for t, _ in mine]
        expected = (
            [
                (s, min(n, s + (mine[0][0].rows if mine else 1)))
                for s in range(0, n, mine[0][0].rows)
            ]
            if mine
            else []
        )
        if not mine or covered != expected or any(len(b) != t.rows for t, b in mine):
            raise ValueError(
                f"kernel tiles do not cover the {part} rows ({len(mine)} tiles "
                f"for {n} rows: {covered})"
            )
        out.append(np.concatenate([b for _, b in mine]))
    return out[0], out[1]


def save_kernel(path: str | Path, blocks: tuple[np.ndarray, np.ndarray] | None, tiles: int) -> None:
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    (root / "kernel.json").write_text(json.dumps({"fanout": blocks is not None, "tiles": tiles}))
    if blocks is not None:
        np.save(root / "train.npy", blocks[0])
        np.save(root / "test.npy", blocks[1])


def load_kernel(path: str | Path | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The assembled (train, test) feature blocks, or None (no fan-out, or no path)."""
    if not path or not (Path(path) / "kernel.json").is_file():
        return None
    root = Path(path)
    if not json.loads((root / "kernel.json").read_text())["fanout"]:
        return None
    return np.load(root / "train.npy"), np.load(root / "test.npy")
