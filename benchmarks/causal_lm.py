"""Benchmark: causal-LM training throughput of the harness beside a bare PyTorch loop.

Interleaved ``--repeats`` times in one process (this machine's speed drifts between minutes,
so only interleaved medians compare), on the same model, documents, batch size, sequence
lengths and optimizer:

- the harness: one cell (``run_cell``) of the causal-LM suite's ``baseline`` strategy on its
  largest training subset, ``--epochs`` epochs, diagnostics off; its training time is the
  ``Trainer``'s epochs (the per-epoch evaluation after each is timed apart and left out);
- a bare loop: ``AutoModelForCausalLM`` in train mode, shuffled batches right-padded with
  padding masked out of the labels, fused AdamW at a constant rate (``Trainer``'s default
  optimizer in transformers 5), gradient clipping at 1.0.

Throughput counts the documents' real tokens (padding excluded) times the epochs, over the
training seconds. Prints both, their ratio (target: harness/bare at least 0.9) and, with
``--run``, the suite's wall time through ``run_suite`` first.

    python benchmarks/causal_lm.py [--suite suites/causal_lm.toml] [--repeats 3] [--epochs 2] [--run]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from overfit_lab import load_suite, run_suite  # noqa: E402
from overfit_lab.batching import CausalLMCollator  # noqa: E402
from overfit_lab.data import load_task_data  # noqa: E402
from overfit_lab.grid import Cell  # noqa: E402
from overfit_lab.models import load_causal_lm, load_tokenizer, resolve_model_path  # noqa: E402
from overfit_lab.predict import encode_documents  # noqa: E402
from overfit_lab.suite import Suite  # noqa: E402
from overfit_lab.training import run_cell  # noqa: E402

DIAGNOSTICS_OFF = {name: {"enabled": False} for name in ("memorization", "robustness", "forgetting", "drift",
                                                          "spectral", "calibration", "bias")}


def bare_training(model, sequences: list[list[int]], *, pad_token_id: int, batch_size: int, lr: float,
                  epochs: int, seed: int) -> float:
    """Real tokens per second of a plain PyTorch causal-LM fine-tuning loop."""
    collate = CausalLMCollator(pad_token_id)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0,
                                  eps=1e-8, fused=True)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    tokens, started = 0, time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(sequences), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            batch = collate([{"input_ids": sequences[i]} for i in order[start:start + batch_size]])
            model(**batch).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            tokens += int(batch["attention_mask"].sum())
    return tokens / (time.perf_counter() - started)


def harness_training(suite, size: int, epochs: int, tokens_per_epoch: int) -> float:
    """Real tokens per second of one harness cell's training epochs."""
    cell = Cell(suite=suite, train_size=size, strategy="baseline", seed=0, label_noise=0.0,
                epochs=epochs, record_epochs=(epochs,), epoch_mode="shared")
    result = run_cell(cell)
    if result.status != "finished":
        raise SystemExit(f"the harness cell failed: {result.reason}")
    return tokens_per_epoch * result.info["last_epoch"] / result.info["train_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=str(ROOT / "suites" / "causal_lm.toml"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--run", action="store_true", help="first time the whole suite through run_suite")
    args = parser.parse_args()
    suite = load_suite(args.suite)
    if suite.task.type != "causal-lm":
        raise SystemExit(f"{args.suite} is not a causal-lm suite")
    if args.run:
        started = time.perf_counter()
        run = run_suite(suite, output=Path(tempfile.mkdtemp(prefix="overfit-lab-bench-")) / "run")
        wall = time.perf_counter() - started
        print(f"{suite.name} wall time (run_suite, {len(run.cells)} cells): {wall:.1f} s")
    raw = suite.model_dump()
    raw["diagnostics"].update(DIAGNOSTICS_OFF)
    suite = Suite.model_validate(raw)

    data = load_task_data(suite)
    path = resolve_model_path(suite.model.name)
    tokenizer = load_tokenizer(path)
    size = max(suite.grid.train_sizes)
    rows = data.training_subset(size, sizes=suite.grid.train_sizes, seed=suite.data.seed)
    encoded = encode_documents(tokenizer, rows["text"].tolist(), max_length=suite.model.max_length)
    tokens = int(encoded.lengths.sum())
    batch_size = suite.recipe.get("per_device_train_batch_size", 8)
    lr = suite.recipe.get("learning_rate", 5e-5)
    figures: dict[str, list[float]] = {"harness": [], "bare": []}
    for _ in range(args.repeats):
        figures["harness"].append(harness_training(suite, size, args.epochs, tokens))
        torch.manual_seed(0)
        model = load_causal_lm(path)
        figures["bare"].append(bare_training(model, encoded.input_ids, pad_token_id=encoded.pad_token_id,
                                             batch_size=batch_size, lr=lr, epochs=args.epochs, seed=0))
        del model

    def show(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} tokens/s (runs: {', '.join(f'{v:.1f}' for v in values)})"

    ratio = statistics.median(figures["harness"]) / statistics.median(figures["bare"])
    print(f"{suite.model.name}: {size} documents, {tokens} real tokens per epoch, batch {batch_size}, "
          f"{args.epochs} epochs, interleaved x{args.repeats}, medians:")
    print(f"  harness training (Trainer epochs, evaluation excluded): {show(figures['harness'])}")
    print(f"  bare PyTorch training loop:                             {show(figures['bare'])}")
    print(f"  ratio harness/bare: {ratio:.3f}  (target >= 0.9)")
    print(f"threads {torch.get_num_threads()}, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
