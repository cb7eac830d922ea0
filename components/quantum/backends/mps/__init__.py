"""``mps``: the exact matrix-product-state engine for wide registers (pure NumPy, no SDK).

The feature maps users run on hardware — ZZ with linear or circular entanglement and a few
reps, angle embeddings — are matrix product states of small, known bond dimension, so exact
kernels and projected features at 50–1 000 qubits cost polynomial time
(:mod:`.engine`). Maps whose exact bond would explode (``full`` entanglement beyond ~17
qubits) are refused, naming the pattern, width and bond dimension.

Options: ``?max_bond=N`` and/or ``?cutoff=eps`` truncate the states (SVD; the discarded
weight is reported in the snapshot and ``truncation_error``); ``?tile_mb=N`` sets the
kernel tiles' working memory (default 1 MiB: cache-sized tiles are fastest); ``?workers=N``
the processes the kernel's tiles are shared by (default: one per CPU the process may use).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from components.errors import BackendError
from components.feature_maps import MAX_REGISTER_QUBITS, FeatureMap
from components.quantum.backends.mps import engine
from components.quantum.backends.registry import (
    BackendFamily,
    BackendName,
    QuantumBackend,
    always_exact,
    register_backend,
)
from components.quantum.budget import WorkEstimate
from components.quantum.calibration import exact_simulator_snapshot
from components.quantum.execution import ExecutionContext

#: Rows' states built at once while streaming (memory: this many bytes of site tensors).
CHUNK_BYTES = 64 * 2**20


class MPSBackend:
    """Exact (optionally truncated) MPS states; kernels by batched overlap contraction."""

    exact = True
    family = "mps"
    #: A kernel call lays its column states out once more (the contraction's layout).
    column_copies = 1

    def __init__(
        self,
        ctx: ExecutionContext | None = None,
        *,
        max_bond: int | None = None,
        cutoff: float = 0.0,
        tile_bytes: int = engine.TILE_BYTES,
        workers: int | None = None,
        name: str = "mps",
    ) -> None:
        self.name = name
        self.ctx = ctx or ExecutionContext()
        self.max_bond = max_bond
        self.cutoff = cutoff
        self.tile_bytes = tile_bytes
        self.workers = workers
        #: Largest discarded weight of any state built so far (0 when exact).
        self.truncation_error = 0.0
        truncating = max_bond is not None or cutoff > 0
        self.simulator = "qubeflow.mps (NumPy, complex128, " + (
            f"truncated: max_bond={max_bond}, cutoff={cutoff:g})" if truncating else "exact)"
        )

    # ---- states --------------------------------------------------------------------------
    def states(self, fmap: FeatureMap, x: np.ndarray) -> engine.MPS:
        mps = engine.build(fmap, x, max_bond=self.max_bond, cutoff=self.cutoff)
        if len(mps.discarded):
            self.truncation_error = max(self.truncation_error, float(mps.discarded.max()))
        return mps

    def state_bytes(self, fmap: FeatureMap) -> int:
        return engine.state_bytes(fmap)

    def bond_dimensions(self, fmap: FeatureMap) -> list[int]:
        """The exact bond dimension at each cut (what ``qubeflow estimate`` reports)."""
        return engine.bond_dimensions(fmap)

    def pair_macs(self, fmap: FeatureMap) -> int:
        """Complex multiply-adds of one overlap (the cost model's kernel unit)."""
        return engine.overlap_macs(fmap)

    def chunk_rows(self, fmap: FeatureMap) -> int:
        return max(1, CHUNK_BYTES // max(1, 4 * engine.state_bytes(fmap)))

    def reference_states(self, fmap: FeatureMap, y: np.ndarray) -> engine.MPS:
        """The reference rows' states, built once and kept by the transformers."""
        return self.states(fmap, y)

    def kernel_against(
        self,
        fmap: FeatureMap,
        x: np.ndarray,
        reference: engine.MPS,
        *,
        what: str = "kernel vs. reference",
        dtype: Any = np.float64,
    ) -> np.ndarray:
        """``K(x, reference)``, ``x``'s states built chunk by chunk (bounded memory)."""
        from components.quantum.statevector import ProgressLogger

        out = np.empty((len(x), reference.rows), dtype=dtype)
        step = self.chunk_rows(fmap)
        logger = ProgressLogger(f"{self.name} {what}")
        for start in range(0, len(x), step):
            stop = min(len(x), start + step)
            self.ctx.clock.check_time(what)
            out[start:stop] = engine.kernel(
                self.states(fmap, x[start:stop]),
                reference,
                tile_bytes=self.tile_bytes,
                workers=self.workers,
            )
            logger(stop, len(x))
        return out

    # ---- the backend interface -----------------------------------------------------------
    def kernel(self, fmap: FeatureMap, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        what = "train Gram" if y is None else "kernel vs. reference"
        self.ctx.clock.check_time(f"{self.name} {what}")
        if y is not None:
            return self.kernel_against(fmap, x, self.states(fmap, y), what=what)
        from components.quantum.statevector import ProgressLogger

        logger = ProgressLogger(f"{self.name} {what}")

        def progress(done: int, total: int) -> None:
            logger(done, total)
            self.ctx.clock.check_time(what)

        return engine.kernel(
            self.states(fmap, x),
            tile_bytes=self.tile_bytes,
            progress=progress,
            workers=self.workers,
        )

    def expectations(self, fmap: FeatureMap, x: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), 3 * fmap.n_qubits), dtype=np.float64)
        step = self.chunk_rows(fmap)
        for start in range(0, len(x), step):
            stop = min(len(x), start + step)
            out[start:stop] = engine.pauli_expectations(self.states(fmap, x[start:stop]))
        return out

    def estimate(self, fmap: FeatureMap, n_x: int, n_y: int | None = None) -> WorkEstimate:
        """One state preparation per new row (the reference rows' states are cached)."""
        return WorkEstimate(circuits=n_x, shots_per_circuit=0, jobs=0)

    def estimate_features(self, fmap: FeatureMap, n_rows: int) -> WorkEstimate:
        return WorkEstimate(circuits=n_rows, shots_per_circuit=0, jobs=0)

    def prepare(self, fmap: FeatureMap) -> None:
        """Refuse, before anything runs, a map whose exact bond dimension would explode."""
        engine.check_bond(fmap)

    def measure_rates(self, fmap: FeatureMap, rows: int = 256) -> tuple[float, float]:
        """(states/s, overlap complex MAC/s) timed here on ``rows`` random rows: the kernel
        of ``rows // 4`` of them against all ``rows`` (full-width column blocks, forked
        workers as a large kernel runs; ~0.2 s at q = 100)."""
        lo, hi = fmap.angle_range
        x = np.random.default_rng(0).uniform(lo, hi, size=(rows, fmap.n_qubits))
        self.states(fmap, x[:4])
        t0 = time.perf_counter()
        states = self.states(fmap, x)
        t1 = time.perf_counter()
        n_x = max(1, rows // 4)
        engine.kernel(
            states.take(0, n_x),
            states,
            tile_bytes=self.tile_bytes,
            workers=self.workers,
            fork_min_work=0,
        )
        t2 = time.perf_counter()
        macs = n_x * rows * engine.overlap_macs(fmap)
        return rows / max(t1 - t0, 1e-9), macs / max(t2 - t1, 1e-9)

    def snapshot(self, fmap: FeatureMap) -> dict[str, Any]:
        return exact_simulator_snapshot(
            self.name,
            self.family,
            self.simulator,
            fmap,
            bond_dimension=engine.max_bond(fmap),
            max_bond=self.max_bond,
            cutoff=self.cutoff,
            truncation_error=self.truncation_error,
        )


def create(parsed: BackendName, ctx: ExecutionContext) -> QuantumBackend:
    extra = set(parsed.options) - {"max_bond", "cutoff", "tile_mb", "workers"}
    if parsed.target or extra:
        raise BackendError(
            "'mps' takes only ?max_bond=N, ?cutoff=eps, ?tile_mb=N and ?workers=N, got "
            f"{str(parsed)!r}",
            field="quantum_backend",
        )
    opts = parsed.options
    max_bond = None
    if "max_bond" in opts:
        if not opts["max_bond"].isdigit() or int(opts["max_bond"]) < 1:
            raise BackendError(
                f"max_bond={opts['max_bond']!r} must be a positive integer",
                field="quantum_backend",
            )
        max_bond = int(opts["max_bond"])
    try:
        cutoff = float(opts.get("cutoff", "0"))
    except ValueError:
        cutoff = -1.0
    if not 0.0 <= cutoff < 1.0:
        raise BackendError(
            f"cutoff={opts['cutoff']!r} must be a number in [0, 1) (discarded weight per cut)",
            field="quantum_backend",
        )
    tile_mb = opts.get("tile_mb", str(engine.TILE_BYTES // 2**20))
    if not tile_mb.isdigit() or int(tile_mb) < 1:
        raise BackendError(
            f"tile_mb={tile_mb!r} must be a positive integer (MiB)", field="quantum_backend"
        )
    workers = opts.get("workers")
    if workers is not None and (not workers.isdigit() or int(workers) < 1):
        raise BackendError(
            f"workers={workers!r} must be a positive integer", field="quantum_backend"
        )
    return MPSBackend(
        ctx,
        max_bond=max_bond,
        cutoff=cutoff,
        tile_bytes=int(tile_mb) * 2**20,
        workers=int(workers) if workers is not None else None,
        name=str(parsed),
    )


register_backend(
    BackendFamily(
        "mps",
        create,
        "mps",
        "exact matrix-product-state engine for wide registers (NumPy; zz linear/circular, "
        f"angle; up to {MAX_REGISTER_QUBITS} qubits); ?max_bond=N / ?cutoff=eps truncate "
        "(discarded weight reported)",
        is_exact=always_exact,
        sdk_packages=("numpy",),
        max_qubits=MAX_REGISTER_QUBITS,
    )
)
