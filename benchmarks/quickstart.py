"""Benchmark: the quickstart run's wall time, and the harness's throughput beside bare PyTorch.

Measured in one process, one after the other:

1. the quickstart suite through ``run_suite`` (wall time; per-cell training and evaluation
   time come from the run's store);
2. a bare PyTorch training loop on the same model, training subset, batch size, sequence
   lengths and optimizer (AdamW, constant LR, gradient clipping at 1.0 as Trainer does);
3. a bare length-sorted ``torch.inference_mode`` forward pass over the same texts the
   harness evaluated.

Prints the figures and the ratios harness/bare: training (optimizer steps only) should be at
least 0.9, evaluation at least 0.8.

    python benchmarks/quickstart.py [--suite suites/quickstart.toml] [--output DIR]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from overfit_lab import load_suite, run_suite  # noqa: E402
from overfit_lab.data import load_task_data  # noqa: E402
from overfit_lab.models import load_classifier, load_tokenizer, resolve_model_path  # noqa: E402


def bare_training(model, tokenizer, texts, labels, *, batch_size, lr, epochs, max_length, seed) -> float:
    """Examples per second of a plain PyTorch fine-tuning loop (dynamic padding)."""
    enc = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                  weight_decay=0.0)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=str(ROOT / "suites" / "quickstart.toml"))
    parser.add_argument("--output", default=None, help="run directory (default: a temporary one)")
    args = parser.parse_args()
    suite = load_suite(args.suite)
    output = Path(args.output or tempfile.mkdtemp(prefix="overfit-lab-bench-")) / "run"

    started = time.perf_counter()
    run = run_suite(suite, output=output)
    wall = time.perf_counter() - started

    cells = run.cells
    data = load_task_data(suite)
    split_sizes = {"validation": len(data.validation), "test": len(data.test)}
    evaluated = run.metrics[run.metrics["metric"] == "loss"].merge(cells[["cell_id", "train_size"]])
    examples = evaluated.apply(lambda r: r.train_size if r.split == "train" else split_sizes[r.split],
                               axis=1).sum()
    harness_eval = examples / cells["eval_s"].sum()
    size = max(suite.grid.train_sizes)
    # full fine-tuning with the model's own dropout, on the subset the bare loop trains on
    full = cells[(cells["strategy"] == "baseline") & (cells["train_size"] == size)]
    harness_train = (full["train_examples"] * full["last_epoch"]).sum() / full["train_s"].sum()

    path = resolve_model_path(suite.model.name)
    tokenizer = load_tokenizer(path)
    rows = data.training_subset(size, sizes=suite.grid.train_sizes, seed=suite.data.seed)
    torch.manual_seed(0)
    model = load_classifier(path, data.label_names)
    bare_train = bare_training(model, tokenizer, rows["text"].tolist(), rows["label"].tolist(),
                               batch_size=suite.recipe.get("per_device_train_batch_size", 8),
                               lr=suite.recipe.get("learning_rate", 5e-5), epochs=2,
                               max_length=suite.model.max_length, seed=0)
    texts = data.validation["text"].tolist() + data.test["text"].tolist() + rows["text"].tolist()
    bare_eval = bare_inference(model, tokenizer, texts, batch_size=suite.evaluation.batch_size,
                               max_length=suite.model.max_length)

    print()
    print(f"quickstart wall time (run_suite, {len(cells)} cells): {wall:.1f} s")
    print(f"  training time {cells['train_s'].sum():.1f} s, evaluation time {cells['eval_s'].sum():.1f} s, "
          f"other {wall - cells['train_s'].sum() - cells['eval_s'].sum():.1f} s")
    print(f"training throughput, baseline n={size} (optimizer steps only): {harness_train:.1f} ex/s")
    print(f"bare PyTorch loop, same model/batch/lengths/optimizer:       {bare_train:.1f} ex/s")
    print(f"  ratio harness/bare: {harness_train / bare_train:.3f}  (target >= 0.9)")
    print(f"evaluation throughput (all splits, every epoch):            {harness_eval:.1f} ex/s")
    print(f"bare length-sorted inference_mode forward pass:            {bare_eval:.1f} ex/s")
    print(f"  ratio harness/bare: {harness_eval / bare_eval:.3f}  (target >= 0.8)")
    print(f"threads {torch.get_num_threads()}, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
