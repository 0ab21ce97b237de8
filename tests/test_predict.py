"""Behavioural tests for batched, length-sorted prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from overfit_lab.models import load_classifier, load_tokenizer
from overfit_lab.predict import Encoded, encode, pad_batch, predict_logits

TEXTS = [
    "good",
    "the food was very good and the service was great",
    "bad",
    "awful",
    "the staff said it was quite bland and the room was dull really dull and very poor",
    "lovely meal",
    "she said the place was fine",
    "rude",
    " ".join(["the"] * 37),  # longer than max_length: truncated
    "he said the food was tasty",
    "superb",
    "it was poor and bland",
    "quite lovely",
    "the meal was really superb and the service very fine",
    "dull",
    "good food",
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path):
    return load_tokenizer(str(tiny_model))


@pytest.fixture()
def model(tiny_model: Path):
    torch.manual_seed(0)
    model = load_classifier(str(tiny_model), ["neg", "pos"])
    model.eval()
    return model


@pytest.fixture(scope="module")
def encoded(tokenizer) -> Encoded:
    labels = np.arange(len(TEXTS)) % 2
    return encode(tokenizer, TEXTS, labels, max_length=24)


def _one_by_one(model, data: Encoded) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for ids in data.input_ids:
            out.append(model(input_ids=torch.tensor([ids])).logits[0].numpy())
    return np.stack(out)


def test_encode_truncates_and_keeps_labels(encoded: Encoded) -> None:
    assert len(encoded) == len(TEXTS)
    assert encoded.labels.tolist() == [i % 2 for i in range(len(TEXTS))]
    assert encoded.lengths.max() == 24
    assert len(set(encoded.lengths.tolist())) > 5  # varied lengths
    assert encoded.pad_token_id == 0


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_predict_logits_match_unpadded_passes(model, encoded: Encoded, batch_size: int) -> None:
    expected = _one_by_one(model, encoded)
    got = predict_logits(model, encoded, batch_size=batch_size)
    assert got.shape == (len(TEXTS), 2)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_predict_logits_order_does_not_depend_on_input_order(model, tokenizer) -> None:
    forward = encode(tokenizer, TEXTS, np.zeros(len(TEXTS)), max_length=24)
    backward = encode(tokenizer, TEXTS[::-1], np.zeros(len(TEXTS)), max_length=24)
    np.testing.assert_allclose(predict_logits(model, backward, batch_size=4)[::-1],
                               predict_logits(model, forward, batch_size=4), atol=1e-5)


def test_predict_restores_train_mode_and_disables_dropout(model, encoded: Encoded) -> None:
    expected = _one_by_one(model, encoded)
    model.train()
    got = predict_logits(model, encoded, batch_size=5)
    assert model.training
    assert all(m.training for m in model.modules())
    np.testing.assert_allclose(got, expected, atol=1e-5)  # no dropout during prediction
    model.eval()
    predict_logits(model, encoded, batch_size=5)
    assert not model.training


def test_predict_does_not_touch_the_global_rng(model, encoded: Encoded) -> None:
    model.train()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    predict_logits(model, encoded, batch_size=3)
    assert torch.equal(torch.get_rng_state(), state)


def test_predict_empty(model) -> None:
    empty = Encoded(input_ids=[], labels=np.zeros(0, dtype=np.int64), pad_token_id=0)
    out = predict_logits(model, empty)
    assert out.shape == (0, 2)


def test_pad_batch_shapes_and_masks() -> None:
    batch = pad_batch([[5, 6, 7], [8], [9, 10]], pad_token_id=1)
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].dtype == torch.long and batch["attention_mask"].dtype == torch.long
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 1, 1], [9, 10, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    single = pad_batch([[4, 4]], pad_token_id=0)
    assert single["input_ids"].shape == (1, 2) and single["attention_mask"].tolist() == [[1, 1]]
