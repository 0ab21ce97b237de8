"""Shared fixtures: a tiny BERT model directory and tiny data sets built in the test session."""

from __future__ import annotations

import os
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

POSITIVE = ["good", "great", "lovely", "fine", "superb", "tasty"]
NEGATIVE = ["bad", "awful", "poor", "bland", "rude", "dull"]
FILLER = ["the", "food", "was", "and", "service", "staff", "room", "very", "quite", "it", "she", "he",
          "said", "place", "meal", "really"]
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def make_sentences(n: int, seed: int) -> pd.DataFrame:
    """Short sentences whose label is the majority sentiment word (with a little noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        label = int(rng.integers(2))
        words = list(rng.choice(FILLER, size=int(rng.integers(3, 8))))
        lexicon = POSITIVE if label else NEGATIVE
        other = NEGATIVE if label else POSITIVE
        words += list(rng.choice(lexicon, size=2)) + list(rng.choice(other, size=int(rng.integers(0, 2))))
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": label,
                     "gender": "female" if rng.random() < 0.5 else "male"})
    return pd.DataFrame(rows)


def write_tiny_bert(directory: Path, words: list[str], *, layers: int = 2) -> Path:
    """Save a randomly initialised BERT (``layers`` layers, hidden 32) and a word-piece tokenizer."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += list(string.ascii_lowercase) + [f"##{c}" for c in string.ascii_lowercase]
    vocab += list(string.punctuation) + sorted(set(words) - set(vocab))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # positional: the argument is vocab= in transformers 5 and vocab_file= in 4
    BertTokenizerFast(str(directory / "vocab.txt")).save_pretrained(directory)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from overfit_lab.data.builtin import generate_reviews

    words = set(POSITIVE + NEGATIVE + FILLER)
    for text in generate_reviews(200, 50, 50, seed=0)["text"]:
        words.update(w.strip(string.punctuation).lower() for w in text.split())
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), sorted(w for w in words if w))


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    make_sentences(240, seed=1).to_csv(path, index=False)
    return path


def tiny_suite_dict(model: Path, data: Path, **grid) -> dict:
    """A suite mapping on the tiny model and CSV, small enough to train in seconds."""
    return {
        "name": "tiny",
        "model": {"name": str(model), "max_length": 32},
        "data": {"path": str(data), "group_columns": ["gender"], "validation_size": 40, "test_size": 40},
        "grid": {"train_sizes": [40, 80], "epochs": [1, 2], "strategies": ["baseline", "freeze1"],
                 "seeds": [0, 1], **grid},
        "recipe": {"learning_rate": 3e-3, "per_device_train_batch_size": 16,
                   "lr_scheduler_type": "constant", "use_cpu": True},
        "strategies": {"freeze1": {"freeze": {"embeddings": True, "layers": 1},
                                   "dropout": {"hidden": 0.2}}},
        "evaluation": {"batch_size": 32},
        # cells run in the test's process (tests replace run_cell; spawning costs seconds a run):
        # the process pool has its own tests (test_executors.py, test_kill_resume.py)
        "execution": {"workers": 1},
    }


def tiny_suite_toml(model: Path, data: Path, extra: str = "") -> str:
    """A one-cell suite file on the tiny model and CSV, with light diagnostics, plus ``extra``."""
    return f"""name = "tiny"
[model]
name = "{model}"
max_length = 32
[data]
path = "{data}"
group_columns = ["gender"]
validation_size = 40
test_size = 40
[grid]
train_sizes = [40]
epochs = [1]
strategies = ["baseline"]
seeds = [0]
[recipe]
learning_rate = 3e-3
per_device_train_batch_size = 16
lr_scheduler_type = "constant"
use_cpu = true
[evaluation]
batch_size = 32
[execution]
workers = 1
[diagnostics]
checkpoints = ["final"]
robustness = {{ enabled = false }}
bias = {{ enabled = false }}
drift = {{ enabled = false }}
spectral = {{ enabled = false }}
{extra}
"""


# --------------------------------------------------------------------------- causal language models
def write_word_tokenizer(directory: Path, words: list[str]) -> None:
    """Save a word-level tokenizer (whitespace and punctuation split) with an end-of-text token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<|endoftext|>", "<unk>", *sorted(set(words))])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                  pre_tokenizers.Punctuation()])
    PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>", unk_token="<unk>",
                            bos_token="<|endoftext|>").save_pretrained(directory)


def write_tiny_causal_lm(directory: Path, words: list[str], *, architecture: str = "gpt2") -> Path:
    """Save a randomly initialised 2-layer causal LM (hidden 32; ``gpt2`` or ``llama``) and a
    word-level tokenizer; GPT-2's tokenizer has no padding token, as the real one."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    write_word_tokenizer(directory, words)
    vocabulary = len(set(words)) + 2
    torch.manual_seed(0)
    if architecture == "gpt2":
        config = GPT2Config(vocab_size=vocabulary, n_positions=128, n_embd=32, n_layer=2, n_head=2,
                            bos_token_id=0, eos_token_id=0)
        model = GPT2LMHeadModel(config)
    else:
        config = LlamaConfig(vocab_size=vocabulary, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                             bos_token_id=0, eos_token_id=0, tie_word_embeddings=True)
        model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    return directory


def review_words(n: int = 400) -> list[str]:
    """The words (and punctuation) of the built-in reviews, for a word-level vocabulary."""
    import re

    from overfit_lab.data.builtin import generate_reviews

    frame = generate_reviews(n, 100, 100, seed=0)
    words: set[str] = set()
    for text in frame["text"]:
        words.update(re.findall(r"\w+|[^\w\s]", text))
    return sorted(words | set(POSITIVE + NEGATIVE + FILLER))


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    return write_tiny_causal_lm(tmp_path_factory.mktemp("tiny-gpt2"), review_words(), architecture="gpt2")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return write_tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama"), review_words(), architecture="llama")


def tiny_lm_suite_dict(model: Path, **grid) -> dict:
    """A causal-LM suite on a tiny model and the built-in reviews, small enough to train in seconds."""
    return {
        "name": "tiny-lm",
        "task": {"type": "causal-lm"},
        "model": {"name": str(model), "max_length": 48},
        "data": {"builtin": "reviews", "builtin_options": {"n_train": 160, "n_validation": 40, "n_test": 40}},
        "grid": {"train_sizes": [40], "epochs": [1, 3], "strategies": ["baseline"], "seeds": [0], **grid},
        "recipe": {"learning_rate": 1e-2, "per_device_train_batch_size": 8, "lr_scheduler_type": "constant",
                   "use_cpu": True},
        "evaluation": {"batch_size": 32},
        "diagnostics": {"checkpoints": ["final"], "robustness": {"subsample": 20, "severities": [0.2],
                                                                  "ops": ["word_dropout", "casing"]},
                        "drift": {"probe_size": 16}, "forgetting": {"max_documents": 16}},
        "execution": {"workers": 1},
    }
