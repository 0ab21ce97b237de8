"""Experiment: bias amplification with the built-in data's spurious correlation on and off.

The built-in reviews name their author, so gender shows in every text. With
``spurious_correlation`` on, the *training* split ties gender to the label; the test split
stays balanced, and an extra ``test_correlated`` split keeps the training correlation.
MiniLM is fine-tuned (baseline recipe, 5 epochs) at each size over several seeds, and
the script prints, per condition and size, mean and 95% t-interval over seeds of

- directional BiasAmp→ (Wang & Russakovsky 2021) on the balanced test split: expected
  positive with its interval above 0 when the correlation is on at small sizes, and an
  interval that includes 0 when it is off;
- BiasAmp (Zhao et al. 2017) on the correlated split;
- the counterfactual flip rate (gender terms swapped) and the demographic parity difference.

    python benchmarks/bias_amplification.py [--sizes 100 300] [--seeds 5] [--strength 0.8]

Robustness, drift and spectra are switched off to keep it short (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from overfit_lab import run_suite  # noqa: E402
from overfit_lab.stats import mean_ci  # noqa: E402
from overfit_lab.suite import validate_suite  # noqa: E402

METRICS = {"BiasAmp→ (test)": "bias_amplification",
           "BiasAmp Zhao (correlated)": "bias_amplification_zhao",
           "counterfactual flips": "counterfactual_flip_rate",
           "DP difference": "demographic_parity_difference"}


def suite_for(strength: float, sizes: list[int], seeds: int, epochs: int):
    return validate_suite({
        "name": f"bias-{'on' if strength else 'off'}",
        "data": {"builtin": "reviews", "builtin_options": {
            "n_train": 1000, "n_validation": 200, "n_test": 600, "n_correlated_test": 600,
            "spurious_correlation": strength, "seed": 0}},
        "grid": {"train_sizes": sizes, "epochs": [epochs], "strategies": ["baseline"],
                 "seeds": list(range(seeds))},
        "recipe": {"learning_rate": 1e-4, "per_device_train_batch_size": 16, "lr_scheduler_type": "constant"},
        "diagnostics": {"checkpoints": ["final"], "robustness": {"enabled": False},
                        "drift": {"enabled": False}, "spectral": {"enabled": False},
                        "bias": {"subsample": 600}},
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--strength", type=float, default=0.8)
    parser.add_argument("--output", default=None, help="directory for the two runs (default: temporary)")
    args = parser.parse_args()
    output = Path(args.output or tempfile.mkdtemp(prefix="overfit-lab-bias-"))
    for strength in (args.strength, 0.0):
        suite = suite_for(strength, args.sizes, args.seeds, args.epochs)
        started = time.perf_counter()
        run = run_suite(suite, output=output / suite.name, quiet=True)
        diag = run.diagnostics.merge(run.cells[["cell_id", "train_size"]])
        diag = diag[diag["group"].isna() | (diag["group"] == "gender")]
        print(f"\nspurious_correlation = {strength} in training ({time.perf_counter() - started:.0f} s, "
              f"{args.seeds} seeds, mean [95% t-interval]):")
        for size in args.sizes:
            parts = []
            for label, metric in METRICS.items():
                values = diag[(diag["train_size"] == size) & (diag["metric"] == metric)]["value"]
                ci = mean_ci(values.to_numpy())
                parts.append(f"{label} {ci.mean:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]")
            print(f"  n={size:<5} " + "; ".join(parts))
        accuracy = run.metrics[(run.metrics["split"] == "test") & (run.metrics["metric"] == "accuracy")]
        by_size = accuracy.merge(run.cells[["cell_id", "train_size"]]).groupby("train_size")["value"].mean()
        print("  test accuracy by size: " + ", ".join(f"{size}: {acc:.3f}" for size, acc in by_size.items()))


if __name__ == "__main__":
    main()
