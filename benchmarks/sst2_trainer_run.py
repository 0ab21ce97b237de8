"""A Trainer run audited against a grid cell of the same settings (developers only: it reads
../shared/datasets, which users do not have).

1. The user's run: MiniLM fine-tuned with plain transformers ``Trainer`` on the training subset a
   grid cell of ``--size`` SST-2 sentences trains on (the same rows, the same validation split
   as its ``eval_dataset``), lr 5e-5, batch 16, ``--epochs`` epochs with the default linear
   schedule, ``eval_strategy="epoch"``, ``save_strategy="epoch"``, seed 0.
2. ``overfit_lab.audit_trainer_run`` on that output directory: the logs' verdict, the best and the
   last checkpoint scored on the SST-2 dev sentences, which one to ship (judged on the
   validation split the Trainer evaluated on, given as ``--validation``).
3. The grid cell with the same settings (``overfit_lab.run_suite``, one cell, diagnostics off).

Prints both validation-loss curves, best epochs and verdicts, and whether they agree.

    python benchmarks/sst2_trainer_run.py [--out reports/sst2-trainer-run] [--size 1000] [--epochs 5]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "datasets" / "sst2"
sys.path.insert(0, str(ROOT))

from overfit_lab import audit_trainer_run, run_suite  # noqa: E402
from overfit_lab.data import load_task_data  # noqa: E402
from overfit_lab.models import resolve_model_path  # noqa: E402
from overfit_lab.suite import validate_suite  # noqa: E402

OFF = {name: {"enabled": False} for name in ("robustness", "bias", "drift", "spectral", "memorization",
                                               "calibration", "slices", "labels", "cartography")}


def suite_of(size: int, epochs: int):
    """The grid cell's suite: SST-2 as benchmarks/sst2_reference.toml splits it."""
    return validate_suite({
        "name": "sst2-trainer-run-cell", "model": {"name": "minilm", "max_length": 64},
        "data": {"train": str(SST2 / "train.csv"), "test": str(SST2 / "dev.csv"), "drop_duplicates": True,
                 "validation_size": 500, "seed": 0},
        "grid": {"train_sizes": [size], "epochs": [epochs], "strategies": ["baseline"], "seeds": [0]},
        "recipe": {"learning_rate": 5e-5, "per_device_train_batch_size": 16},
        "diagnostics": {"checkpoints": ["final"], **OFF}, "execution": {"workers": 1, "threads": 2},
    })


def user_run(train, validation, out: Path, *, epochs: int) -> None:
    """The user's own fine-tuning with transformers (overfit-lab only chose the rows)."""
    import numpy as np
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    base = resolve_model_path("minilm")
    tokenizer = AutoTokenizer.from_pretrained(base)
    set_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, id2label={0: "0", 1: "1"}, label2id={"0": 0, "1": 1})

    def encode(frame):
        return Dataset.from_pandas(frame[["text", "label"]].reset_index(drop=True)).map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True,
            remove_columns=["text"])

    def accuracy(prediction):
        logits, labels = prediction
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    args = TrainingArguments(output_dir=str(out), num_train_epochs=epochs, learning_rate=5e-5,
                             per_device_train_batch_size=16, per_device_eval_batch_size=64,
                             eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch",
                             report_to=[], seed=0, disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=encode(train), eval_dataset=encode(validation),
            data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
            compute_metrics=accuracy).train()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "reports" / "sst2-trainer-run"))
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    if not SST2.is_dir():
        sys.exit(f"{SST2} is missing: this benchmark needs ../shared/datasets (developers only).")
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    suite = suite_of(args.size, args.epochs)
    data = load_task_data(suite)
    train = data.training_subset(args.size, sizes=[args.size], seed=0)
    train[["text", "label"]].to_csv(out / "train.csv", index=False)
    data.validation[["text", "label"]].to_csv(out / "validation.csv", index=False)

    started = time.perf_counter()
    user_run(train, data.validation, out / "trainer", epochs=args.epochs)
    trained = time.perf_counter() - started
    started = time.perf_counter()
    audited = audit_trainer_run(out / "trainer", out / "train.csv", SST2 / "dev.csv", output=out / "audit",
                                validation=out / "validation.csv", max_length=64, quiet=True)
    audit_s = time.perf_counter() - started
    started = time.perf_counter()
    grid = run_suite(suite, output=out / "grid", quiet=True)
    grid_s = time.perf_counter() - started

    logs = audited.trainer_run["logs"]
    curve = [round(row["eval_loss"], 4) for row in audited.trainer_run["curve"]]
    cell = grid.generalization.iloc[-1]
    grid_curve = grid.metrics.query("split == 'validation' and metric == 'loss'").sort_values("epoch")
    print(f"Trainer run: {trained:.0f} s; its audit: {audit_s:.0f} s; the grid cell: {grid_s:.0f} s")
    print(f"  Trainer eval loss per epoch:    {curve}")
    print(f"  grid validation loss per epoch: {[round(v, 4) for v in grid_curve['value']]}")
    print(f"  logs:      {logs['verdict']} ({logs['reason']}); best evaluation {logs['best_evaluation']}")
    print(f"  grid cell: {cell['verdict']} ({cell['reason']}); best epoch {cell['best_epoch']}")
    for line in logs.get("missing", []):
        print(f"  not judged from the logs: {line}")
    ship = audited.trainer_run["ship"]
    print(f"  ship {ship['checkpoint']}: {ship['why']}")
    same = logs["verdict"] == cell["verdict"] and logs["best_evaluation"] == cell["best_epoch"]
    print(f"  verdict and best epoch agree: {same}")


if __name__ == "__main__":
    main()
