"""Coverage of evalsuite's intervals by simulation: how often the nominal 95% interval holds the truth.

    python bench/ci_coverage.py [--reps 2000] [--seed 0]

Rates (`rate_ci`, the interval every reported rate uses): per cell n prompts (5..200) x true rate
(0.5..0.99, and the all-0 / all-1 boundaries) x seeds per prompt (1, 2, 4) x prompt heterogeneity
(every prompt at the same rate, or prompt rates drawn from a Beta with concentration 2: some prompts
always right, some always wrong). A prompt's seeds are Bernoulli draws of its rate; the truth is the
population rate. Printed per cell: coverage (share of REPS simulated evaluations whose interval holds
the truth) and the share of zero-width intervals; the goal is >= 0.93 in every cell and no zero width.
The old percentile bootstrap is measured beside it on the small cells (it collapses there).

Then paired rate deltas (`paired_rate_delta_ci`, the gate's interval, 90% as it decides) with a candidate
that loses a share of the baseline's successes, and continuous means (`mean_ci`, Student-t) on skewed
prompt means. Everything is vectorised numpy: about a minute on 2 shared cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import ROOT  # noqa: F401  (puts the repository on sys.path)

from evalsuite.metrics.stats import mean_bounds, paired_rate_delta_bounds, rate_bounds

NS = (5, 10, 20, 50, 100, 200)
RATES = (0.0, 0.5, 0.7, 0.9, 0.95, 0.99, 1.0)
SEEDS = (1, 2, 4)
CONC = 2.0          # Beta concentration a + b for heterogeneous prompts


def prompt_rates(rng, rate: float, n: int, reps: int, hetero: bool) -> np.ndarray:
    if not hetero or rate in (0.0, 1.0):
        return np.full((reps, n), rate)
    return rng.beta(rate * CONC, (1 - rate) * CONC, size=(reps, n))


def bootstrap_bounds(x: np.ndarray, rng, b: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    reps, n = x.shape
    idx = rng.integers(0, n, size=(b, n))
    stats = x[:, idx].mean(axis=-1)               # (reps, b)
    return np.quantile(stats, 0.025, axis=1), np.quantile(stats, 0.975, axis=1)


def rate_table(rng, reps: int) -> float:
    worst = 1.0
    for hetero in (False, True):
        print(f"\nrate_ci, 95%, prompts {'heterogeneous (Beta, concentration 2)' if hetero else 'homogeneous'}: "
              f"coverage (zero-width share); [old bootstrap coverage] for n <= 20")
        print("n \\ rate  seeds  " + "  ".join(f"{r:>13g}" for r in RATES))
        for n in NS:
            for k in SEEDS:
                cells = []
                for r in RATES:
                    p = prompt_rates(rng, r, n, reps, hetero)
                    x = rng.binomial(k, p) / k
                    _, lo, hi = rate_bounds(x, k)
                    cov = float(np.mean((lo <= r) & (r <= hi)))
                    zero = float(np.mean(hi - lo <= 0))
                    worst = min(worst, cov)
                    cell = f"{cov:.3f} ({zero:.2f})"
                    if n <= 20 and 0 < r < 1:
                        sub = x[: min(reps, 400)]
                        blo, bhi = bootstrap_bounds(sub, rng)
                        cell += f"[{np.mean((blo <= r) & (r <= bhi)):.2f}]"
                    cells.append(cell)
                print(f"{n:>9}  {k:>5}  " + "  ".join(f"{c:>13}" for c in cells))
    return worst


def paired_table(rng, reps: int) -> float:
    worst = 1.0
    print("\npaired_rate_delta_ci, 90% (the gate's decision interval): coverage of the true mean delta; the "
          "candidate loses a share f of the baseline's successes (heterogeneous prompts, base rate 0.9)")
    print("n \\ f  seeds  " + "  ".join(f"{f:>8g}" for f in (0.0, 0.03, 0.1, 0.3)))
    for n in NS:
        for k in SEEDS:
            cells = []
            for f in (0.0, 0.03, 0.1, 0.3):
                pb = prompt_rates(rng, 0.9, n, reps, True)
                b = rng.random((reps, n, k)) < pb[..., None]
                lose = rng.random((reps, n, k)) < f
                c = b & ~lose
                d = c.mean(-1) - b.mean(-1)
                _, lo, hi = paired_rate_delta_bounds(d, confidence=0.90)
                truth = -f * 0.9
                cov = float(np.mean((lo <= truth) & (truth <= hi)))
                worst = min(worst, cov / 0.90 * 0.95)    # compare against 90% nominal
                cells.append(f"{cov:.3f}")
            print(f"{n:>6}  {k:>5}  " + "  ".join(f"{c:>8}" for c in cells))
    return worst


def mean_table(rng, reps: int) -> float:
    worst = 1.0
    print("\nmean_ci, 95% (Student-t on prompt means): CLIP-score-like prompt means (normal, sd 4) and skewed "
          "(lognormal, sigma 0.8)")
    print("n     normal   skewed")
    for n in NS:
        a = rng.normal(25.0, 4.0, size=(reps, n))
        s = rng.lognormal(0.0, 0.8, size=(reps, n))
        _, lo, hi = mean_bounds(a)
        ca = float(np.mean((lo <= 25.0) & (25.0 <= hi)))
        _, lo, hi = mean_bounds(s)
        truth = float(np.exp(0.8**2 / 2))
        cs = float(np.mean((lo <= truth) & (truth <= hi)))
        worst = min(worst, ca)
        print(f"{n:<5} {ca:.3f}    {cs:.3f}")
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    from _common import machine

    print(f"machine: {machine()}; {a.reps} simulated evaluations per cell, RNG seed {a.seed}")
    rng = np.random.default_rng(a.seed)
    t0 = time.perf_counter()
    w_rate = rate_table(rng, a.reps)
    w_pair = paired_table(rng, a.reps)
    w_mean = mean_table(rng, a.reps)
    print(f"\nworst cell: rate_ci {w_rate:.3f} (goal >= 0.93), paired delta 90% interval "
          f"{w_pair / 0.95 * 0.90:.3f} (nominal 0.90), mean_ci (normal) {w_mean:.3f}; "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
