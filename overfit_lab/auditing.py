"""Audits: score an already fine-tuned model without training it.

:func:`score_model` (behind :func:`overfit_lab.audit`, which then writes the report and prints the
summary) loads the model as it is (head included), scores the training data it was tuned on and
held-out data, runs every diagnostic on that one checkpoint, and stores the result as a run of
one cell (strategy ``audit``; the run's meta says it is an audit), so the terminal summary, the
HTML report and the checks work on it as on any run. The gap is measured between the training
file and the held-out file (``validation`` if given, else ``test``). Drift (CKA, weight
distance) and, for a causal LM, forgetting need the pretrained ``reference`` model; without one
they are skipped. ``task`` is the model's ``[task] type`` (a classifier by default).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.markup import escape

from .data import TaskData, load_task_data
from .environment import environment_facts
from .errors import OverfitLabError
from .model_checks import check_model
from .models import load_tokenizer
from .rows import SPLITS, CellRow
from .scoring import CheckpointScorer, encode_splits
from .store import RunStore
from .suite import AuditSpec, Suite, validate_suite
from .tasks import TASKS, task_of
from .training import CellResult

AUDIT_STRATEGY = "audit"
SHIP_ALPHA = 0.05  # the last checkpoint replaces the best only when significantly better


def score_model(model: str | Path, train: str | Path, test: str | Path, *,
                validation: str | Path | None = None, groups: Sequence[str] = (),
                group_separator: str | None = None, reference: str | Path | None = None,
                checks: str | Path | None = None,
                text_column: str = "text", label_column: str = "label", max_length: int = 128,
                trust_remote_code: bool = False, allow_pickle: bool = False, diagnostics: dict | None = None,
                task: str = "sequence-classification", output: str | Path | None = None,
                announce: Callable[[str], None] | None = None) -> Path:
    """Score a fine-tuned model as a one-cell run and store it; returns the run directory.
    :func:`overfit_lab.audit` documents the arguments; ``announce`` gets one line saying what is
    audited, once the model and data are loaded."""
    audited = Audited(AUDIT_STRATEGY, AUDIT_STRATEGY, str(model), "--model",
                      "an existing fine-tuned model, scored as it is")
    return _score_models([audited], train, test, validation=validation, groups=groups,
                         group_separator=group_separator, reference=reference, checks=checks,
                         text_column=text_column, label_column=label_column, max_length=max_length,
                         trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                         diagnostics=diagnostics, task=task, output=output, announce=announce)


@dataclass(frozen=True)
class Audited:
    """One model an audit scores: its cell id and strategy name in the run, its directory, the
    option that named it (for errors) and what it is (the strategy's description)."""

    cell_id: str
    strategy: str
    path: str
    key: str
    description: str


def score_trainer_run(output_dir: str | Path, train: str | Path, test: str | Path, **options) -> Path:
    """Audit a ``transformers.Trainer`` output directory: read its logs (learning curve, best
    evaluation, onset and the grid's verdict rule, :mod:`overfit_lab.trainer_runs`), score its
    best checkpoint (lowest logged evaluation loss) and its last one as two cells of one run
    (``best``, ``last``; one cell when they are the same), and say which to ship and why. The
    logs' verdict, what they could not judge and the choice are in the run's meta
    (``trainer_run``). ``options``: as :func:`score_model`'s."""
    from .diagnostics.generalization import DEFAULT_THRESHOLDS
    from .export.json_export import to_plain
    from .trainer_runs import read_trainer_run

    run = read_trainer_run(output_dir, require_checkpoints=True)
    logs = run.verdict(DEFAULT_THRESHOLDS)
    saved = [c for c in run.checkpoints if c.has_weights]
    best = run.checkpoint_for(logs["best_step"]) if logs["best_step"] is not None else None
    best = best if best is not None and best.has_weights else saved[-1]
    last = saved[-1]
    chosen = [Audited(best.path.name, "best", str(best.path), "--trainer-run",
                      f"{best.path.name}: the checkpoint at or before the lowest logged evaluation loss")]
    if last.path != best.path:
        chosen.append(Audited(last.path.name, "last", str(last.path), "--trainer-run",
                              f"{last.path.name}: the last checkpoint"))
    facts = to_plain({"output_dir": str(Path(output_dir).resolve()),
                        "logs": {k: v for k, v in logs.items() if k not in ("curve", "labels")},
                        "curve": logs["curve"].to_dict("records"), "curve_labels": logs["labels"],
                        "checkpoints": {"best": chosen[0].cell_id, "last": last.path.name}})
    return _score_models(chosen, train, test, trainer_run=facts, **options)


def _score_models(models: list[Audited], train, test, *, validation=None, groups: Sequence[str] = (),
                  group_separator: str | None = None, reference=None, checks=None, text_column: str = "text",
                  label_column: str = "label", max_length: int = 128, trust_remote_code: bool = False,
                  allow_pickle: bool = False, diagnostics: dict | None = None,
                  task: str = "sequence-classification", output=None,
                  announce: Callable[[str], None] | None = None, trainer_run: dict | None = None) -> Path:
    """Score ``models`` (one cell each) on the same data as one run; returns its directory."""
    from .runner import DEFAULT_REPORTS, commit_cell, default_run_dir

    if task not in TASKS:
        raise OverfitLabError(f"unknown task '{task}'.", key="--task", fix=f"use one of {', '.join(TASKS)}.")
    paths = [check_model(m.path, key=m.key, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                         finetuned=True, max_length=max_length, max_length_key="--max-length", task=task)
             for m in models]
    reference_path = None if reference is None else check_model(
        str(reference), key="--reference", trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
        task=task)
    suite = _audit_suite(paths[0], train, test, validation=validation, groups=list(groups),
                         group_separator=group_separator, reference=reference_path, text_column=text_column,
                         label_column=label_column, max_length=max_length,
                         trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                         diagnostics=diagnostics, task=task,
                         strategies={m.strategy: m.description for m in models},
                         name=Path(trainer_run["output_dir"]).name if trainer_run else None)
    if checks is not None:
        from .checks import load_checks

        suite = load_checks(checks, suite)
    data = load_task_data(suite, source="--train")
    run_dir = Path(output) if output is not None else default_run_dir(suite, DEFAULT_REPORTS)
    held_out = "validation" if validation is not None else "test"
    spec = AuditSpec(reference=reference_path, held_out=held_out)
    meta = {"data_fingerprint": data.fingerprint(), "audit": spec.model_dump(),
            "leakage": data.leakage.to_dict()}
    store = None
    try:
        outputs = {}
        for audited, path in zip(models, paths, strict=True):
            started = time.perf_counter()
            network = task_of(suite).load_finetuned(path, trust_remote_code=trust_remote_code,
                                                    allow_pickle=allow_pickle)
            tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
            cell_data = _align_labels(data, network) if task == "sequence-classification" else data
            if store is None:
                store = RunStore.create(run_dir, suite, environment_facts(),
                                        meta={**meta, "label_names": cell_data.label_names})
                if announce is not None:
                    what = trainer_run["output_dir"] if trainer_run else path
                    announce(f"[bold]{suite.name}[/]: auditing {what} on {len(data.train)} training and "
                             f"{len(data.test)} test rows -> {store.run_dir}")
                    for line in data.leakage.lines():
                        announce(f"[yellow]warning:[/] {escape(line)}")
            result, outputs[audited.strategy] = _audit_cell(suite, network, tokenizer, cell_data, path,
                                                            reference_path, started, audited)
            commit_cell(store, result)
        if trainer_run is not None:
            ship = _ship(outputs, cell_data, trainer_run, task, split=held_out)
            store.set_meta("trainer_run", {**trainer_run, "ship": ship})
    except BaseException:  # an audit interrupted or broken before its cells are stored leaves no directory
        if store is not None:
            store.close()
            shutil.rmtree(store.run_dir, ignore_errors=True)
        raise
    store.close()
    return store.run_dir


def _ship(outputs: dict[str, dict[str, np.ndarray]], data: TaskData, facts: dict, task: str, *,
          split: str) -> dict:
    """Which checkpoint to ship and why: the best one (chosen by the logged evaluation loss, before
    seeing the audit's data) unless the last one is significantly better on ``split`` (the
    ``--validation`` file when given, else the test file: exact McNemar test on which rows each
    gets right; a causal LM: Wilcoxon signed-rank on the documents' losses), at 0.05. Choosing on
    the test file makes its figures optimistic for the chosen checkpoint, and the reason says so."""
    from scipy.stats import binomtest, wilcoxon

    best, last = facts["checkpoints"]["best"], facts["checkpoints"]["last"]
    if "last" not in outputs:
        return {"checkpoint": best, "why": "the best and the last checkpoint are the same", "p": None}
    outputs = {name: split_outputs[split] for name, split_outputs in outputs.items()}
    where = ("the --validation file" if split == "validation" else
             "the test file (choosing on it makes its figures optimistic for the chosen checkpoint; give "
             "--validation to choose on other data)")
    if task == "sequence-classification":
        y = data.split(split)["label"].to_numpy()
        right = {name: out.argmax(axis=1) == y for name, out in outputs.items()}
        better = int((right["last"] & ~right["best"]).sum())
        worse = int((~right["last"] & right["best"]).sum())
        p = binomtest(better, better + worse, 0.5, alternative="greater").pvalue if better + worse else 1.0
        scores = {name: float(r.mean()) for name, r in right.items()}
        measure, test = f"{split} accuracy", "exact McNemar test"
    else:
        from .diagnostics.language import sequence_losses

        losses = {name: sequence_losses(out) for name, out in outputs.items()}
        keep = np.isfinite(losses["best"]) & np.isfinite(losses["last"])
        differences = losses["best"][keep] - losses["last"][keep]
        p = wilcoxon(differences, alternative="greater").pvalue if np.any(differences != 0) else 1.0
        scores = {name: float(np.mean(value[keep])) for name, value in losses.items()}
        measure, test = f"mean {split} document loss", "Wilcoxon signed-rank test"
    figures = (f"{measure} {scores['best']:.3f} ({best}) against {scores['last']:.3f} ({last}), "
               f"{test} p = {p:.3g}")
    if p < SHIP_ALPHA:
        return {"checkpoint": last, "p": float(p),
                "why": f"the last checkpoint is significantly better on {where}: {figures}"}
    return {"checkpoint": best, "p": float(p),
            "why": f"it had the lowest logged evaluation loss, and the last checkpoint is not significantly "
                   f"better on {where}: {figures}"}


def _audit_suite(model_path: str, train, test, *, validation, groups: list[str],
                 group_separator: str | None = None, reference: str | None,
                 text_column: str, label_column: str, max_length: int, trust_remote_code: bool,
                 allow_pickle: bool, diagnostics: dict | None, task: str, strategies: dict[str, str],
                 name: str | None = None) -> Suite:
    for key, value in (("--train", train), ("--test", test), ("--validation", validation)):
        if value is not None and not Path(value).exists():
            raise OverfitLabError(f"no such file or directory: {value}.", key=key, fix="correct the path.")
    diagnostics = dict(diagnostics or {})
    diagnostics.setdefault("checkpoints", ["final"])
    if reference is None:  # both compare with the pretrained model
        for name in ("drift", "forgetting"):
            diagnostics[name] = {**diagnostics.get(name, {}), "enabled": False}
    raw = {
        "name": f"audit-{name or Path(model_path).name}",
        "description": f"audit of {model_path} (no training)",
        "task": {"type": task},
        "model": {"name": model_path, "max_length": max_length, "trust_remote_code": trust_remote_code,
                  "allow_pickle": allow_pickle},
        "data": {"train": str(Path(train).resolve()), "test": str(Path(test).resolve()),
                 "validation": str(Path(validation or test).resolve()), "text_column": text_column,
                 "label_column": label_column, "group_columns": groups,
                 "group_separator": group_separator},
        "grid": {"train_sizes": [1], "epochs": [1], "strategies": list(strategies), "seeds": [0]},
        "strategies": {strategy: {"description": what} for strategy, what in strategies.items()},
        "diagnostics": diagnostics,
    }
    suite = validate_suite(raw, source="audit")
    n_train = len(load_task_data(suite, source="--train").train)  # the data is cached for the audit
    return suite.model_copy(update={"grid": suite.grid.model_copy(update={"train_sizes": [n_train]})})


def _align_labels(data: TaskData, model) -> TaskData:
    """Use the model's own label order when its label names match the data's; otherwise the
    data's labels must already be the model's class indices."""
    n = int(model.config.num_labels)
    if data.n_classes != n:
        raise OverfitLabError(f"the data has {data.n_classes} labels ({', '.join(data.label_names)}) and the "
                              f"model {n} classes.", key="--train",
                              fix="give the data the model was fine-tuned for (or set --label-column).")
    names = [str(model.config.id2label.get(i, i)) for i in range(n)]
    lowered = {name.lower(): i for i, name in enumerate(names)}
    if names == data.label_names or set(lowered) != {name.lower() for name in data.label_names}:
        return data
    index = np.array([lowered[name.lower()] for name in data.label_names])

    def remap(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if frame is None else frame.assign(label=index[frame["label"].to_numpy()])

    return TaskData(train=remap(data.train), validation=remap(data.validation), test=remap(data.test),
                    label_names=names, group_columns=data.group_columns,
                    correlated_test=remap(data.correlated_test))


def _audit_cell(suite: Suite, model, tokenizer, data: TaskData, model_path: str, reference: str | None,
                started: float, audited: Audited) -> tuple[CellResult, dict[str, np.ndarray]]:
    """The audited model's cell, and its outputs on each split."""
    cell = CellRow(cell_id=audited.cell_id, train_size=len(data.train), strategy=audited.strategy, seed=0,
                   label_noise=0.0, epochs=1, record_epochs=(1,), epoch_mode="audit",
                   epoch_mode_reason="an existing model, scored without training")
    # drift compares with the reference, the pretrained model (without one drift is switched off)
    scorer = CheckpointScorer(tokenizer=tokenizer, suite=suite, data=data,
                              train_rows=data.train.assign(clean_label=data.train["label"]),
                              encoded=encode_splits(task_of(suite), tokenizer, data,
                                                     max_length=suite.model.max_length),
                              pretrained_path=reference)
    eval_started = time.perf_counter()
    logits = {"test": scorer.logits(model, "test")}
    if suite.data.validation == suite.data.test:  # the gap is measured on the test file
        logits["validation"] = logits["test"]
    eval_s = time.perf_counter() - eval_started
    scores = scorer.score(model, epoch=1, splits=SPLITS, checkpoint="final", logits=logits)
    info = {"wall_s": time.perf_counter() - started, "train_s": 0.0, "eval_s": eval_s + scores.metrics_s,
            "diagnostics_s": scores.diagnostics_s, "train_examples": len(data.train),
            "diagnostics_forward_examples": scorer.forward["examples"],
            "diagnostics_forward_s": scorer.forward["seconds"],
            "model": model_path, "reference": reference, "label_names": json.dumps(data.label_names),
            "diagnostic_failures": scores.failures}
    result = CellResult(cell=cell, status="finished", metrics=scores.metrics, info=info,
                        diagnostics=scores.diagnostics, examples=scores.examples, dynamics=scores.dynamics)
    return result, scores.logits
