"""The classical baseline's size estimate against a real fit (``make bench-baseline``).

For each train size, fits the real baseline (``components.training.models``: the RBF SVC's CV
grid up to ``exact_max_rows``, Nyström + linear head above) on seeded ``make_classification``
data (8 features scaled to angles, as the pipeline's preprocessing leaves them) and prints the
estimate the data step would have logged (``components.training.baseline_cost``), the measured
time and their ratio, with PASS/FAIL: the estimate is a planning figure, so the target is
"within a factor of 2.5 either way" — enough to tell seconds from hours, which is what the
``classical_max_seconds`` refusal needs. Plain script, never run by the tests::

    python benchmarks/baseline_cost_bench.py
    python benchmarks/baseline_cost_bench.py --svc-rows 1000,4000 --nystroem-rows 200000
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from components.training.baseline_cost import estimate_baseline

FACTOR = 2.5
LANDMARKS = 256


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import MinMaxScaler

    x, y = make_classification(
        n_samples=n, n_features=8, n_informative=6, flip_y=0.05, random_state=seed
    )
    return MinMaxScaler((0, np.pi)).fit_transform(x), y


def fit_seconds(method: str, x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.kernel_approximation import Nystroem

    from components.training.models import fit_linear_head, fit_rbf_svc_grid, rbf_scale_gamma

    t0 = time.perf_counter()
    if method == "svc":
        fit_rbf_svc_grid(x, y, seed=0)
    else:
        features = Nystroem(
            kernel="rbf", gamma=rbf_scale_gamma(x), n_components=LANDMARKS, random_state=0
        )
        fit_linear_head(features.fit_transform(x), y, seed=0)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svc-rows", default="500,1000,2000,4000")
    parser.add_argument("--nystroem-rows", default="20000,100000,200000")
    args = parser.parse_args()
    plans = [("svc", int(n)) for n in args.svc_rows.split(",") if n] + [
        ("nystroem", int(n)) for n in args.nystroem_rows.split(",") if n
    ]
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{'baseline':<10}{'train rows':>12}{'estimate s':>12}{'measured s':>12}{'ratio':>8}")
    failed = 0
    for method, n in plans:
        exact_max_rows = n if method == "svc" else n - 1
        estimate = estimate_baseline(n, exact_max_rows=exact_max_rows, landmarks=LANDMARKS)
        measured = fit_seconds(method, *data(n))
        ratio = estimate.seconds / measured
        ok = 1 / FACTOR <= ratio <= FACTOR
        failed += not ok
        print(
            f"{method:<10}{n:>12,}{estimate.seconds:>12.1f}{measured:>12.1f}{ratio:>8.2f}"
            f"  {'PASS' if ok else 'FAIL'}",
            flush=True,
        )
    print(
        f"{'PASS' if not failed else 'FAIL'}  estimate within {FACTOR}x of the real fit "
        f"({len(plans) - failed}/{len(plans)} sizes)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
