"""An audit of a model fine-tuned on SST-2, as a team would bring one (developers only: it reads
../shared/datasets, which users do not have).

1. Fine-tunes MiniLM on 1,000 SST-2 training sentences (stratified, seed 0) with plain
   transformers ``Trainer`` (lr 5e-5, batch 16, 3 epochs) and saves it with ``save_pretrained``:
   this stands for the user's model; overfit-lab is not involved.
2. Runs ``overfit_lab.audit`` on it: the 1,000 training sentences, the 872 dev sentences as
   held-out data, and MiniLM as the reference for drift. Prints the wall time of each step and
   the headline figures; the report is ``OUT/audit/report.html``.

    python benchmarks/sst2_audit.py [--out reports/sst2-audit] [--size 1000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "datasets" / "sst2"
sys.path.insert(0, str(ROOT))

from overfit_lab import audit  # noqa: E402
from overfit_lab.models import resolve_model_path  # noqa: E402


def fine_tune(train: pd.DataFrame, out: Path, *, epochs: int) -> Path:
    """A user's own fine-tuning with transformers, saved as a model directory."""
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    base = resolve_model_path("minilm")
    tokenizer = AutoTokenizer.from_pretrained(base)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    dataset = Dataset.from_pandas(train[["text", "label"]]).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True)
    args = TrainingArguments(output_dir=str(out / "scratch"), num_train_epochs=epochs, learning_rate=5e-5,
                             per_device_train_batch_size=16, save_strategy="no", report_to=[], seed=0,
                             logging_strategy="no", disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=dataset, data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer).train()
    model_dir = out / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "reports" / "sst2-audit"))
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if not SST2.is_dir():
        sys.exit(f"{SST2} is missing: this benchmark needs ../shared/datasets (developers only).")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pool = pd.read_csv(SST2 / "train.csv")
    train = pool.groupby("label", group_keys=False).sample(n=args.size // 2, random_state=0)
    train.to_csv(out / "train.csv", index=False)

    started = time.perf_counter()
    model_dir = fine_tune(train, out, epochs=args.epochs)
    tuned = time.perf_counter() - started
    started = time.perf_counter()
    run = audit(model_dir, out / "train.csv", SST2 / "dev.csv", reference="minilm", max_length=64,
                output=out / "audit")
    audited = time.perf_counter() - started
    print(f"\nfine-tuning ({args.size} sentences, {args.epochs} epochs): {tuned:.0f} s; "
          f"audit: {audited:.0f} s "
          f"(diagnostics {run.cells.iloc[0]['diagnostics_s']:.0f} s)")
    scores = run.scores.iloc[0]
    for name in ("test_accuracy", "gap_accuracy", "gap_loss", "ece", "worst_robustness_drop",
                 "counterfactual_flip_rate", "membership_advantage", "mean_cka", "mean_alpha"):
        print(f"  {name}: {scores.get(name, float('nan')):.4f}")
    print(f"  diagnostic metrics stored: {sorted(set(run.diagnostics['metric']))}")


if __name__ == "__main__":
    main()
