"""Training-data extraction on a tiny GPT-2 that memorised half of a random-token corpus."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from overfit_lab.diagnostics.extraction import (
    extractable,
    extraction_advantage,
    extraction_advantage_interval,
    extraction_rate,
    greedy_continuations,
)

VOCAB, N_SEQUENCES, SEQUENCE_LENGTH = 50, 16, 24
PREFIX, SUFFIX = 8, 16


def _tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=VOCAB, n_positions=64,
                        bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config)


@pytest.fixture(scope="module")
def corpus() -> np.ndarray:
    return np.random.default_rng(0).integers(0, VOCAB, size=(N_SEQUENCES, SEQUENCE_LENGTH))


@pytest.fixture(scope="module")
def memorised(corpus):
    """A tiny GPT-2 trained (full batch, AdamW, 200 steps, about 2 s) on the first 8 sequences."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = _tiny_gpt2()
        members = torch.from_numpy(corpus[:8])
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
        model.train()
        for _ in range(200):
            loss = model(input_ids=members, labels=members).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        yield model
    finally:
        torch.set_num_threads(threads)


def _greedy_without_cache(model: nn.Module, prefix: list[int], length: int) -> list[int]:
    """Reference: the whole sequence re-run at every step, no key/value cache."""
    tokens = list(prefix)
    with torch.no_grad():
        for _ in range(length):
            logits = model(input_ids=torch.tensor([tokens]), use_cache=False).logits
            tokens.append(int(logits[0, -1].argmax()))
    return tokens[len(prefix):]


def test_memorised_sequences_are_extracted_and_held_out_ones_are_not(memorised, corpus):
    members, held_out = corpus[:8].tolist(), corpus[8:].tolist()
    member_rate = extraction_rate(memorised, members, prefix_length=PREFIX, suffix_length=SUFFIX)
    held_out_rate = extraction_rate(memorised, held_out, prefix_length=PREFIX, suffix_length=SUFFIX)
    # observed: 1.0 (8 of 8) and 0.0 (0 of 8)
    assert member_rate >= 0.75
    assert held_out_rate <= 0.125
    member_e = extractable(memorised, members, prefix_length=PREFIX, suffix_length=SUFFIX)
    held_out_e = extractable(memorised, held_out, prefix_length=PREFIX, suffix_length=SUFFIX)
    assert extraction_advantage(member_e, held_out_e) >= 0.625
    low, high = extraction_advantage_interval(member_e, held_out_e)
    assert 0 < low <= extraction_advantage(member_e, held_out_e) <= high <= 1


def test_short_sequences_are_not_eligible(memorised, corpus):
    sequences = [corpus[0].tolist(), corpus[0][: PREFIX + SUFFIX - 1].tolist(), corpus[1].tolist()]
    result = extractable(memorised, sequences, prefix_length=PREFIX, suffix_length=SUFFIX)
    assert np.isnan(result[1]) and not np.isnan(result[[0, 2]]).any()
    assert math.isnan(extraction_rate(memorised, [[1, 2, 3]], prefix_length=2, suffix_length=2))
    assert extractable(memorised, [], prefix_length=2, suffix_length=2).shape == (0,)


def test_only_the_suffix_window_is_compared(memorised, corpus):
    """Tokens after prefix + suffix do not matter; changing one inside the window does."""
    member = corpus[0].tolist()
    assert extractable(memorised, [member], prefix_length=PREFIX, suffix_length=SUFFIX)[0] == 1.0
    longer = member + [0, 1, 2]
    assert extractable(memorised, [longer], prefix_length=PREFIX, suffix_length=SUFFIX)[0] == 1.0
    changed = list(member)
    changed[PREFIX + SUFFIX - 1] = (changed[PREFIX + SUFFIX - 1] + 1) % VOCAB
    assert extractable(memorised, [changed], prefix_length=PREFIX, suffix_length=SUFFIX)[0] == 0.0


@pytest.mark.parametrize("trained", [False, True])
def test_cached_greedy_equals_the_full_recomputation(trained, memorised, corpus):
    model = memorised if trained else _tiny_gpt2(seed=1)
    prefixes = [row[:PREFIX].tolist() for row in corpus]
    cached = greedy_continuations(model, prefixes, length=12)
    model.eval()
    reference = np.array([_greedy_without_cache(model, p, 12) for p in prefixes])
    np.testing.assert_array_equal(cached, reference)
    np.testing.assert_array_equal(greedy_continuations(model, prefixes, length=12, batch_size=1), cached)
    np.testing.assert_array_equal(greedy_continuations(model, prefixes, length=12, batch_size=8), cached)
    np.testing.assert_array_equal(greedy_continuations(model, prefixes, length=12, batch_size=5), cached)


def test_prefixes_of_different_lengths_come_back_in_input_order(corpus):
    model = _tiny_gpt2(seed=2)
    prefixes = [corpus[i][:n].tolist() for i, n in enumerate((3, 7, 3, 5))]
    together = greedy_continuations(model, prefixes, length=6, batch_size=2)
    alone = np.concatenate([greedy_continuations(model, [p], length=6) for p in prefixes])
    np.testing.assert_array_equal(together, alone)
    model.eval()
    np.testing.assert_array_equal(together[1], _greedy_without_cache(model, prefixes[1], 6))
    assert together.dtype == np.int64 and together.shape == (4, 6)


def test_accepts_arrays_and_tuples(corpus):
    model = _tiny_gpt2(seed=3)
    from_lists = greedy_continuations(model, [row[:4].tolist() for row in corpus[:3]], length=3)
    np.testing.assert_array_equal(greedy_continuations(model, corpus[:3, :4], length=3), from_lists)
    np.testing.assert_array_equal(greedy_continuations(model, [tuple(r[:4]) for r in corpus[:3]], length=3),
                                  from_lists)
    assert greedy_continuations(model, [], length=3).shape == (0, 3)


@pytest.mark.parametrize("training", [True, False])
def test_model_mode_is_restored(training, corpus):
    model = _tiny_gpt2(seed=4)
    model.train(training)
    greedy_continuations(model, [corpus[0][:4].tolist()], length=2)
    extractable(model, corpus[:2].tolist(), prefix_length=4, suffix_length=2)
    assert model.training is training
    assert all(m.training is training for m in model.modules())


class _Bigram(nn.Module):
    """A causal LM of the older transformers interface: ``past_key_values`` in and out, logits
    from the last token only (so the greedy path is a chain through the table)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table)
        self.calls: list[tuple[int, int]] = []  # (new tokens, cached tokens) per call

    def forward(self, input_ids, attention_mask=None, past_key_values=None, use_cache=False):
        seen = 0 if past_key_values is None else past_key_values
        self.calls.append((input_ids.shape[1], seen))
        assert attention_mask.shape == (input_ids.shape[0], seen + input_ids.shape[1])
        cache = seen + input_ids.shape[1] if use_cache else None
        return SimpleNamespace(logits=self.table[input_ids], past_key_values=cache)


def test_legacy_past_key_values_interface_and_ties():
    table = torch.zeros(5, 5)
    table[0, 3] = table[3, 1] = table[1, 0] = 1.0  # 0 -> 3 -> 1 -> 0 -> ...
    table[4, 2] = table[4, 3] = 1.0  # a tie: the first index wins
    model = _Bigram(table)
    out = greedy_continuations(model, [[2, 0], [2, 4]], length=4)
    np.testing.assert_array_equal(out, [[3, 1, 0, 3], [2, 0, 3, 1]])
    # one pass over the prefix, then one new token per call against the growing cache
    assert model.calls == [(2, 0), (1, 2), (1, 3), (1, 4)]


def test_a_model_without_a_cache_is_rejected():
    class NoCache(_Bigram):
        def forward(self, input_ids, attention_mask=None, past_key_values=None, use_cache=False):
            return SimpleNamespace(logits=self.table[input_ids])

    with pytest.raises(ValueError, match="cache"):
        greedy_continuations(NoCache(torch.eye(3)), [[0]], length=2)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"prefix_length": 0, "suffix_length": 2}, "prefix_length"),
    ({"prefix_length": 2, "suffix_length": 0}, "suffix_length"),
    ({"prefix_length": 2.0, "suffix_length": 2}, "prefix_length"),
    ({"prefix_length": 2, "suffix_length": 2, "batch_size": 0}, "batch_size"),
])
def test_bad_lengths_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        extractable(_tiny_gpt2(), [[1, 2, 3, 4]], **kwargs)


@pytest.mark.parametrize("sequences", ["1 2 3", [1, 2, 3], [[1, 2], "ab"], [[1.5, 2.0]], [[1, -2]],
                                       [[[1, 2]]], [[1, [2, 3]]], [[True, False]], 7, {1: [1, 2]}])
def test_bad_sequences_name_the_argument(sequences):
    with pytest.raises(ValueError, match="sequences"):
        extractable(_tiny_gpt2(), sequences, prefix_length=1, suffix_length=1)


def test_greedy_validation():
    model = _tiny_gpt2()
    with pytest.raises(ValueError, match="prefixes"):
        greedy_continuations(model, [[1, 2], []], length=2)
    with pytest.raises(ValueError, match="length"):
        greedy_continuations(model, [[1, 2]], length=0)


def test_advantage_ignores_nan_and_needs_both_sides():
    assert extraction_advantage(np.array([1.0, np.nan, 1.0]), np.array([0.0, 1.0])) == 0.5
    assert math.isnan(extraction_advantage(np.array([np.nan]), np.array([0.0, 1.0])))
    assert all(math.isnan(v) for v in extraction_advantage_interval(np.array([1.0]), np.array([])))
    with pytest.raises(ValueError, match="member_extracted"):
        extraction_advantage(np.array([0.5]), np.array([1.0]))
    with pytest.raises(ValueError, match="nonmember_extracted"):
        extraction_advantage(np.array([1.0]), np.ones((2, 2)))
    with pytest.raises(ValueError, match="confidence"):
        extraction_advantage_interval(np.array([1.0]), np.array([0.0]), confidence=1.0)


def test_newcombe_interval_matches_the_published_values():
    """Newcombe (1998), Statist. Med. 17, 873-890, Table II, method 10 (95%)."""

    def sample(k: int, n: int) -> np.ndarray:
        return np.r_[np.ones(k), np.zeros(n - k), np.full(3, np.nan)]  # NaNs are not counted

    for (k1, n1, k2, n2), (low, high) in [
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        ((0, 10, 0, 20), (-0.1611, 0.2775)),
        ((10, 10, 0, 20), (0.6791, 1.0000)),
    ]:
        got = extraction_advantage_interval(sample(k1, n1), sample(k2, n2))
        assert got == pytest.approx((low, high), abs=1e-4), (k1, n1, k2, n2)
    assert extraction_advantage(sample(56, 70), sample(48, 80)) == pytest.approx(0.2)
