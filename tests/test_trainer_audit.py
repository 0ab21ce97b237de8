"""`overfit-lab audit --trainer-run`: a plain transformers Trainer run read back and its best and
last checkpoints audited, with which one to ship and why."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import make_sentences
from test_trainer_runs import _train
from typer.testing import CliRunner

from overfit_lab import audit_trainer_run, load_run
from overfit_lab.cli import app
from overfit_lab.trainer_runs import read_trainer_run

LIGHT = {name: {"enabled": False} for name in ("robustness", "bias", "drift", "spectral", "memorization")}


@pytest.fixture(scope="module")
def trainer_dir(tiny_model, tmp_path_factory):
    """A user's own Trainer run (noisy labels, 4 epochs, evaluated and saved every epoch), and the
    data files it was tuned on and held out."""
    base = tmp_path_factory.mktemp("user-run")
    _train(tiny_model, base / "out", with_tokenizer=True)
    train, test = make_sentences(24, seed=0), make_sentences(32, seed=1)
    train.to_csv(base / "train.csv", index=False)
    test.to_csv(base / "test.csv", index=False)
    return base / "out", base / "train.csv", base / "test.csv"


@pytest.fixture(scope="module")
def audited(trainer_dir, tmp_path_factory):
    out, train, test = trainer_dir
    return audit_trainer_run(out, train, test, output=tmp_path_factory.mktemp("audit") / "run", quiet=True,
                             max_length=32, diagnostics=LIGHT)


def test_the_logs_verdict_and_the_checkpoints_audited(trainer_dir, audited):
    logs = read_trainer_run(trainer_dir[0]).verdict()
    facts = audited.trainer_run
    assert facts["logs"]["verdict"] == logs["verdict"] and facts["logs"]["best_step"] == logs["best_step"]
    best = read_trainer_run(trainer_dir[0]).checkpoint_for(logs["best_step"]).path.name
    last = read_trainer_run(trainer_dir[0]).checkpoints[-1].path.name
    cells = audited.cells.set_index("strategy")
    assert cells.loc["best", "cell_id"] == best
    if best != last:
        assert cells.loc["last", "cell_id"] == last and len(cells) == 2
    assert any("accuracy gap" in line for line in facts["logs"]["missing"])
    assert facts["ship"]["checkpoint"] in (best, last) and facts["ship"]["why"]


def test_each_checkpoint_is_scored_as_its_own_model(trainer_dir, audited):
    """Each cell's test accuracy is its checkpoint's, computed here with plain transformers."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    test = pd.read_csv(trainer_dir[2])
    for row in audited.cells.itertuples():
        path = trainer_dir[0] / row.cell_id
        model = AutoModelForSequenceClassification.from_pretrained(path).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
        batch = tokenizer(test["text"].tolist(), padding=True, truncation=True, max_length=32,
                          return_tensors="pt")
        with torch.no_grad():
            predicted = model(**batch).logits.argmax(-1).numpy()
        accuracy = float(np.mean(predicted == test["label"].to_numpy()))
        stored = audited.generalization.set_index("cell_id").loc[row.cell_id, "test_accuracy"]
        assert stored == pytest.approx(accuracy)


def test_the_summary_and_report_say_what_to_ship(audited):
    from rich.console import Console

    from overfit_lab.report.html import render_report
    from overfit_lab.report.terminal import print_summary

    console = Console(record=True, width=120)
    print_summary(audited, console)
    text = " ".join(console.export_text().split())
    assert "Trainer run" in text and f"ship {audited.trainer_run['ship']['checkpoint']}" in text
    html = render_report(audited)
    assert 'id="trainer-run"' in html and 'id="trainer-curve"' in html
    assert load_run(audited.run_dir).trainer_run == audited.trainer_run


@pytest.mark.parametrize("which", ["both", "neither"])
def test_model_or_trainer_run_not_both(trainer_dir, tmp_path, which):
    out, train, test = trainer_dir
    args = ["audit", "--train", str(train), "--test", str(test), "--output", str(tmp_path / "r")]
    if which == "both":
        args += ["--model", str(out / "checkpoint-3"), "--trainer-run", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--trainer-run" in result.output and not (tmp_path / "r").exists()


def test_a_checkpoint_without_a_tokenizer_is_one_line(trainer_dir, tmp_path):
    import shutil

    out = tmp_path / "bare"
    shutil.copytree(trainer_dir[0], out)
    for path in out.glob("checkpoint-*/tokenizer*"):  # as when a Trainer had no tokenizer to save
        path.unlink()
    result = CliRunner().invoke(app, ["audit", "--trainer-run", str(out), "--train", str(trainer_dir[1]),
                                      "--test", str(trainer_dir[2]), "--output", str(tmp_path / "r")])
    assert result.exit_code == 2 and "tokenizer" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def _train_causal_lm(model_dir, output_dir, train: list[str], held_out: list[str], *,
                     max_length: int) -> None:
    """A user's own causal-LM fine-tuning with plain transformers: documents ended by the
    end-of-text token, evaluated and saved every epoch."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.pad_token = tokenizer.eos_token  # GPT-2 has none; the collator pads with it

    def encode(texts):
        return [{"input_ids": (tokenizer(text)["input_ids"] + [tokenizer.eos_token_id])[:max_length]}
                for text in texts]

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    args = TrainingArguments(output_dir=str(output_dir), eval_strategy="epoch", save_strategy="epoch",
                             logging_strategy="epoch", num_train_epochs=30, per_device_train_batch_size=8,
                             learning_rate=1e-2, lr_scheduler_type="constant", use_cpu=True, report_to="none",
                             disable_tqdm=True, seed=0)
    Trainer(model=model, args=args, train_dataset=encode(train), eval_dataset=encode(held_out),
            processing_class=tokenizer, data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False)
            ).train()


def _document_losses(path, texts: list[str], *, max_length: int):
    """Each document's mean next-token loss, one at a time with plain transformers."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    losses, tokens = [], []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([(tokenizer(text)["input_ids"] + [tokenizer.eos_token_id])[:max_length]])
            losses.append(float(model(input_ids=ids, labels=ids).loss))
            tokens.append(ids.shape[1] - 1)
    return np.array(losses), np.array(tokens)


def test_a_causal_lm_trainer_run_is_audited_and_its_ship_test_is_wilcoxons(tiny_gpt2, tmp_path):
    """A causal LM's Trainer run: the logs judged as a classifier's, each checkpoint's test loss
    as plain transformers computes it, and the choice between best and last by scipy's
    one-sided Wilcoxon signed-rank test on the documents' losses."""
    import numpy as np
    from scipy.stats import wilcoxon

    from overfit_lab.data.builtin import generate_reviews

    reviews = generate_reviews(48, 1, 32, seed=0)
    train = reviews.query("split == 'train'")["text"].tolist()
    test = reviews.query("split == 'test'")["text"].tolist()
    (tmp_path / "train.txt").write_text("\n".join(train) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(test) + "\n")
    _train_causal_lm(tiny_gpt2, tmp_path / "out", train, test, max_length=32)
    run = audit_trainer_run(tmp_path / "out", tmp_path / "train.txt", tmp_path / "test.txt", task="causal-lm",
                            output=tmp_path / "audit", quiet=True, max_length=32,
                            diagnostics={name: {"enabled": False} for name in
                                         ("robustness", "drift", "spectral", "memorization", "forgetting")})
    logs = read_trainer_run(tmp_path / "out").verdict()
    facts = run.trainer_run
    assert facts["logs"]["verdict"] == logs["verdict"]
    cells = run.cells.set_index("strategy")["cell_id"]
    assert set(cells.index) == {"best", "last"}, "the fixture's run must have passed its best epoch"
    losses = {}
    for name, checkpoint in cells.items():
        losses[name], tokens = _document_losses(tmp_path / "out" / checkpoint, test, max_length=32)
        stored = run.generalization.set_index("cell_id").loc[checkpoint, "test_loss"]
        assert stored == pytest.approx(np.sum(losses[name] * tokens) / np.sum(tokens), rel=1e-5)
    p = wilcoxon(losses["best"] - losses["last"], alternative="greater").pvalue
    ship = facts["ship"]
    assert "Wilcoxon signed-rank" in ship["why"] and ship["p"] == pytest.approx(p, rel=1e-6)
    assert ship["checkpoint"] == (cells["last"] if p < 0.05 else cells["best"])
