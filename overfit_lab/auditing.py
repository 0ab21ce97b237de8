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
    from .runner import DEFAULT_REPORTS, commit_cell, default_run_dir

    if task not in TASKS:
        raise OverfitLabError(f"unknown task '{task}'.", key="--task", fix=f"use one of {', '.join(TASKS)}.")
    model_path = check_model(str(model), key="--model", trust_remote_code=trust_remote_code,
                             allow_pickle=allow_pickle, finetuned=True, max_length=max_length,
                             max_length_key="--max-length", task=task)
    reference_path = None if reference is None else check_model(
        str(reference), key="--reference", trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
        task=task)
    suite = _audit_suite(model_path, train, test, validation=validation, groups=list(groups),
                         group_separator=group_separator, reference=reference_path, text_column=text_column,
                         label_column=label_column,
                         max_length=max_length, trust_remote_code=trust_remote_code,
                         allow_pickle=allow_pickle, diagnostics=diagnostics, task=task)
    if checks is not None:
        from .checks import load_checks

        suite = load_checks(checks, suite)
    started = time.perf_counter()
    network = task_of(suite).load_finetuned(model_path, trust_remote_code=trust_remote_code,
                                            allow_pickle=allow_pickle)
    tokenizer = load_tokenizer(model_path, trust_remote_code=trust_remote_code)
    data = load_task_data(suite, source="--train")
    if task == "sequence-classification":
        data = _align_labels(data, network)
    run_dir = Path(output) if output is not None else default_run_dir(suite, DEFAULT_REPORTS)
    spec = AuditSpec(reference=reference_path, held_out="validation" if validation is not None else "test")
    store = RunStore.create(run_dir, suite, environment_facts(),
                            meta={"data_fingerprint": data.fingerprint(), "label_names": data.label_names,
                                  "audit": spec.model_dump(), "leakage": data.leakage.to_dict()})
    if announce is not None:
        announce(f"[bold]{suite.name}[/]: auditing {model_path} on {len(data.train)} training and "
                 f"{len(data.test)} test rows -> {store.run_dir}")
        for line in data.leakage.lines():
            announce(f"[yellow]warning:[/] {escape(line)}")
    try:
        result = _audit_cell(suite, network, tokenizer, data, model_path, reference_path, started)
    except BaseException:  # an audit interrupted or broken before its one cell leaves no directory
        store.close()
        shutil.rmtree(store.run_dir, ignore_errors=True)
        raise
    try:
        commit_cell(store, result)
    finally:
        store.close()
    return store.run_dir


def _audit_suite(model_path: str, train, test, *, validation, groups: list[str],
                 group_separator: str | None = None, reference: str | None,
                 text_column: str, label_column: str, max_length: int, trust_remote_code: bool,
                 allow_pickle: bool, diagnostics: dict | None, task: str) -> Suite:
    for key, value in (("--train", train), ("--test", test), ("--validation", validation)):
        if value is not None and not Path(value).exists():
            raise OverfitLabError(f"no such file or directory: {value}.", key=key, fix="correct the path.")
    diagnostics = dict(diagnostics or {})
    diagnostics.setdefault("checkpoints", ["final"])
    if reference is None:  # both compare with the pretrained model
        for name in ("drift", "forgetting"):
            diagnostics[name] = {**diagnostics.get(name, {}), "enabled": False}
    raw = {
        "name": f"audit-{Path(model_path).name}",
        "description": f"audit of {model_path} (no training)",
        "task": {"type": task},
        "model": {"name": model_path, "max_length": max_length, "trust_remote_code": trust_remote_code,
                  "allow_pickle": allow_pickle},
        "data": {"train": str(Path(train).resolve()), "test": str(Path(test).resolve()),
                 "validation": str(Path(validation or test).resolve()), "text_column": text_column,
                 "label_column": label_column, "group_columns": groups,
                 "group_separator": group_separator},
        "grid": {"train_sizes": [1], "epochs": [1], "strategies": [AUDIT_STRATEGY], "seeds": [0]},
        "strategies": {AUDIT_STRATEGY: {"description": "an existing fine-tuned model, scored as it is"}},
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
                started: float) -> CellResult:
    cell = CellRow(cell_id=AUDIT_STRATEGY, train_size=len(data.train), strategy=AUDIT_STRATEGY, seed=0,
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
    return CellResult(cell=cell, status="finished", metrics=scores.metrics, info=info,
                      diagnostics=scores.diagnostics, examples=scores.examples, dynamics=scores.dynamics)
