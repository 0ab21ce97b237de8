"""Benchmark: the quickstart run's wall time, and the harness's throughput beside bare PyTorch.

Measured in one process:

1. the quickstart suite through ``run_suite``: wall time, and per-cell training and evaluation
   time from the run's store;
2. then, interleaved ``--repeats`` times (this machine's speed drifts by 10-20% between
   minutes, so only interleaved medians compare):

   - the harness: one cell (``run_cell``) of the quickstart's baseline strategy on its largest
     training subset, 2 epochs; training throughput counts optimizer steps only;
   - a bare PyTorch loop on the same model, subset, batch size, sequence lengths and optimizer
     (fused AdamW as Trainer's default, constant LR, gradient clipping at 1.0), 2 epochs;
   - a bare length-sorted ``torch.inference_mode`` forward pass over the texts the harness
     evaluates per epoch (training subset, validation, test), beside the harness cell's own
     evaluation throughput and its diagnostics' throughput (perturbed, counterfactual and
     correlated-split texts and the drift probe, tokenization included).

Prints the figures and the ratios harness/bare: training should be at least 0.9, evaluation
and diagnostics' evaluation at least 0.8; and the diagnostics' share of the quickstart's wall
time (target at most 30%).

    python benchmarks/quickstart.py [--suite suites/quickstart.toml] [--output DIR]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from overfit_lab import load_suite, run_suite  # noqa: E402
from overfit_lab.data import load_task_data  # noqa: E402
from overfit_lab.grid import Cell  # noqa: E402
from overfit_lab.models import load_classifier, load_tokenizer, resolve_model_path  # noqa: E402
from overfit_lab.training import run_cell  # noqa: E402


def bare_training(model, tokenizer, texts, labels, *, batch_size, lr, epochs, max_length, seed) -> float:
    """Examples per second of a plain PyTorch fine-tuning loop (dynamic padding)."""
    enc = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    # Trainer's default optimizer in transformers 5 is fused AdamW: use the same
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                  weight_decay=0.0, eps=1e-8, fused=True)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    seen, started = 0, time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(enc), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = tokenizer.pad({"input_ids": [enc[i] for i in idx]}, return_tensors="pt")
            out = model(**batch, labels=torch.tensor([labels[i] for i in idx]))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            seen += len(idx)
    return seen / (time.perf_counter() - started)


def bare_inference(model, tokenizer, texts, *, batch_size, max_length) -> float:
    """Examples per second of a length-sorted forward pass under ``torch.inference_mode``."""
    enc = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    order = np.argsort([len(ids) for ids in enc], kind="stable")
    model.eval()
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = tokenizer.pad({"input_ids": [enc[i] for i in idx]}, return_tensors="pt")
            model(**batch)
    return len(enc) / (time.perf_counter() - started)


def harness_cell(suite, size: int, epochs: int) -> tuple[float, float, float]:
    """(training, evaluation, diagnostics' evaluation) examples per second of one harness cell."""
    cell = Cell(suite=suite, train_size=size, strategy="baseline", seed=0, label_noise=0.0,
                epochs=epochs, record_epochs=(epochs,), epoch_mode="shared")
    result = run_cell(cell)
    frame = pd.DataFrame(result.metrics, columns=["epoch", "split", "metric", "value"])
    data = load_task_data(suite)
    sizes = {"train": size, "validation": len(data.validation), "test": len(data.test)}
    evaluated = sum(sizes[s] for s in frame[frame.metric == "loss"]["split"])
    info = result.info
    return (info["train_examples"] * info["last_epoch"] / info["train_s"], evaluated / info["eval_s"],
            info["diagnostics_forward_examples"] / info["diagnostics_forward_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=str(ROOT / "suites" / "quickstart.toml"))
    parser.add_argument("--output", default=None, help="run directory (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    suite = load_suite(args.suite)
    output = Path(args.output or tempfile.mkdtemp(prefix="overfit-lab-bench-")) / "run"

    started = time.perf_counter()
    run = run_suite(suite, output=output)
    wall = time.perf_counter() - started
    cells = run.cells

    data = load_task_data(suite)
    path = resolve_model_path(suite.model.name)
    tokenizer = load_tokenizer(path)
    size = max(suite.grid.train_sizes)
    rows = data.training_subset(size, sizes=suite.grid.train_sizes, seed=suite.data.seed)
    eval_texts = rows["text"].tolist() + data.validation["text"].tolist() + data.test["text"].tolist()
    figures: dict[str, list[float]] = {"harness_train": [], "bare_train": [], "harness_eval": [],
                                       "bare_eval": [], "harness_diagnostics": []}
    for _ in range(args.repeats):
        train, evaluation, diagnostics = harness_cell(suite, size, epochs=2)
        figures["harness_train"].append(train)
        figures["harness_eval"].append(evaluation)
        figures["harness_diagnostics"].append(diagnostics)
        torch.manual_seed(0)
        model = load_classifier(path, data.label_names)
        figures["bare_train"].append(bare_training(
            model, tokenizer, rows["text"].tolist(), rows["label"].tolist(),
            batch_size=suite.recipe.get("per_device_train_batch_size", 8),
            lr=suite.recipe.get("learning_rate", 5e-5), epochs=2, max_length=suite.model.max_length,
            seed=0))
        figures["bare_eval"].append(bare_inference(model, tokenizer, eval_texts,
                                                   batch_size=suite.evaluation.batch_size,
                                                   max_length=suite.model.max_length))
    med = {k: statistics.median(v) for k, v in figures.items()}

    def show(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} ex/s (runs: {', '.join(f'{v:.1f}' for v in values)})"

    print()
    print(f"quickstart wall time (run_suite, {len(cells)} cells): {wall:.1f} s")
    diagnostics = cells["diagnostics_s"].sum() if "diagnostics_s" in cells else 0.0
    other = wall - cells["train_s"].sum() - cells["eval_s"].sum() - diagnostics
    print(f"  training {cells['train_s'].sum():.1f} s, evaluation {cells['eval_s'].sum():.1f} s, "
          f"diagnostics {diagnostics:.1f} s, other {other:.1f} s")
    print(f"  diagnostics' share of the wall time: {diagnostics / wall:.1%}  (target <= 30%)")
    print(f"interleaved x{args.repeats}, baseline, n={size}, 2 epochs, medians:")
    print(f"  harness training (optimizer steps only): {show(figures['harness_train'])}")
    print(f"  bare PyTorch training loop:              {show(figures['bare_train'])}")
    print(f"  ratio harness/bare training:   {med['harness_train'] / med['bare_train']:.3f}  (target >= 0.9)")
    print(f"  harness evaluation (per-epoch splits):   {show(figures['harness_eval'])}")
    print(f"  bare length-sorted forward pass:         {show(figures['bare_eval'])}")
    print(f"  ratio harness/bare evaluation: {med['harness_eval'] / med['bare_eval']:.3f}  (target >= 0.8)")
    print(f"  diagnostics' forward passes:             {show(figures['harness_diagnostics'])}")
    ratio = med["harness_diagnostics"] / med["bare_eval"]
    print(f"  ratio diagnostics/bare evaluation: {ratio:.3f}  (target >= 0.8)")
    print(f"threads {torch.get_num_threads()}, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
