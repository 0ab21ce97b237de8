"""Linear CKA and weight drift: hand cases, independent HSIC implementations (biased and Song et
al.'s unbiased U-statistic), values from Kornblith's reference code, a tiny BERT."""

from __future__ import annotations

import copy
import string

import numpy as np
import pandas as pd
import pytest
import torch

from overfit_lab.diagnostics.drift import frozen_states, hidden_states, layer_cka, linear_cka, weight_distance
from overfit_lab.suite import DriftSpec

WORDS = ["the", "food", "was", "good", "bad", "and", "service", "great", "awful", "room", "very", "dull"]


def _hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Slow reference: CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), K = X X^T, L = Y Y^T."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n

    def hsic(k: np.ndarray, l_: np.ndarray) -> float:
        return float(np.trace(k @ h @ l_ @ h)) / (n - 1) ** 2

    k, l_ = x @ x.T, y @ y.T
    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def _u_statistic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Slow reference: CKA with HSIC_1 of Song et al. (2012), Gram matrices with zeroed diagonal,
    on the raw (uncentred) features."""
    n = len(x)
    one = np.ones(n)

    def hsic_1(k: np.ndarray, l_: np.ndarray) -> float:
        k, l_ = k.copy(), l_.copy()
        np.fill_diagonal(k, 0.0)
        np.fill_diagonal(l_, 0.0)
        return float(np.trace(k @ l_) + (one @ k @ one) * (one @ l_ @ one) / ((n - 1) * (n - 2))
                     - 2 / (n - 2) * (one @ k @ l_ @ one)) / (n * (n - 3))

    k, l_ = x @ x.T, y @ y.T
    return hsic_1(k, l_) / np.sqrt(hsic_1(k, k) * hsic_1(l_, l_))


def _orthogonal(dim: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


@pytest.mark.parametrize("debiased", [True, False])
def test_cka_of_a_representation_with_itself_is_one(debiased: bool) -> None:
    x = np.random.default_rng(0).standard_normal((50, 8))
    assert linear_cka(x, x, debiased=debiased) == pytest.approx(1.0, abs=1e-12)
    wide = np.random.default_rng(1).standard_normal((20, 64))  # Gram-matrix route (n < p)
    assert linear_cka(wide, wide, debiased=debiased) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("debiased", [True, False])
def test_cka_invariant_to_orthogonal_transforms_and_isotropic_scaling(debiased: bool) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 10))
    y = x @ rng.standard_normal((10, 7)) + 0.5 * rng.standard_normal((60, 7))
    base = linear_cka(x, y, debiased=debiased)
    assert 0.1 < base < 0.99
    assert linear_cka(x @ _orthogonal(10, rng), y, debiased=debiased) == pytest.approx(base, abs=1e-12)
    assert linear_cka(x, y @ _orthogonal(7, rng) * 3.7, debiased=debiased) == pytest.approx(base, abs=1e-12)
    # a shift is centred away
    assert linear_cka(0.01 * x + 5.0, y, debiased=debiased) == pytest.approx(base, abs=1e-12)
    assert linear_cka(x @ _orthogonal(10, rng), x, debiased=debiased) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("n", "p", "q"), [(40, 5, 9), (30, 50, 12), (25, 3, 3)])
def test_biased_cka_matches_hsic_reference(n: int, p: int, q: int) -> None:
    rng = np.random.default_rng(n + p + q)
    x = rng.standard_normal((n, p)) * rng.uniform(0.1, 3, size=p)
    y = np.hstack([x[:, :1], rng.standard_normal((n, q - 1))]) @ rng.standard_normal((q, q))
    assert linear_cka(x, y, debiased=False) == pytest.approx(_hsic_cka(x, y), rel=1e-10)
    assert linear_cka(y, x, debiased=False) == pytest.approx(linear_cka(x, y, debiased=False), rel=1e-12)


@pytest.mark.parametrize(("n", "p", "q"), [(40, 5, 9), (30, 50, 12), (25, 3, 3), (6, 2, 4), (4, 3, 2)])
def test_debiased_cka_matches_song_u_statistic(n: int, p: int, q: int) -> None:
    """Default estimator = Song et al.'s HSIC_1 with explicitly zeroed Gram diagonals, on raw
    features with an offset (the U-statistic is shift-invariant, so centring must not matter)."""
    rng = np.random.default_rng(100 + n + p + q)
    x = rng.standard_normal((n, p)) * rng.uniform(0.1, 3, size=p) + rng.normal(0, 2, size=p)
    y = np.hstack([x[:, :1], rng.standard_normal((n, q - 1))]) @ rng.standard_normal((q, q)) + 1.0
    reference = _u_statistic_cka(x, y)
    assert linear_cka(x, y) == pytest.approx(reference, abs=1e-10)
    assert linear_cka(x, y, debiased=True) == pytest.approx(reference, abs=1e-10)
    assert linear_cka(y, x) == pytest.approx(linear_cka(x, y), abs=1e-12)
    assert linear_cka(x, y) != pytest.approx(linear_cka(x, y, debiased=False), abs=1e-6)


def test_debiased_cka_matches_reference_code_values() -> None:
    """Values from Kornblith's reference code (google-research representation_similarity/Demo.ipynb,
    ``feature_space_linear_cka(x, y, debiased=True)``, identical to ``cka(gram_linear(x),
    gram_linear(y), debiased=True)``). The notebook's own example prints 0.51346 debiased and
    0.55761 biased; the other three were produced by a transcription of that code."""
    np.random.seed(1337)  # the notebook's data (legacy RandomState stream)
    x = np.random.randn(100, 10)
    y = np.random.randn(100, 10) + x
    assert linear_cka(x, y) == pytest.approx(0.513456489505526, abs=1e-12)
    assert linear_cka(x, y, debiased=False) == pytest.approx(0.5576132566117586, abs=1e-12)
    for seed, n, p, q, expected in ((0, 12, 5, 7, 0.07936804871265261), (1, 30, 50, 12, -0.10653038850931221),
                                    (2, 8, 3, 3, 0.6689475863568048)):
        rs = np.random.RandomState(seed)
        a = rs.randn(n, p)
        b = np.hstack([a[:, :1], rs.randn(n, q - 1)])
        assert linear_cka(a, b) == pytest.approx(expected, abs=1e-12)  # -0.107: can fall below 0


def test_independent_representations_score_near_zero_at_the_default_probe_size() -> None:
    """n = the default probe size, d = 384 (MiniLM's width): the biased estimator scores two
    independent Gaussian representations far above 0, the debiased one within 0.05 of 0."""
    n, d, draws = DriftSpec().probe_size, 384, 20
    rng = np.random.default_rng(2024)
    spectra = {"isotropic": np.ones(d), "decay k^-1/2": np.arange(1, d + 1) ** -0.5,
               "decay k^-1": 1.0 / np.arange(1, d + 1)}
    debiased, biased = {}, {}
    for name, scale in spectra.items():
        pairs = [(rng.standard_normal((n, d)) * scale, rng.standard_normal((n, d)) * scale)
                 for _ in range(draws)]
        debiased[name] = np.array([linear_cka(x, y) for x, y in pairs])
        biased[name] = np.array([linear_cka(x, y, debiased=False) for x, y in pairs])
        assert np.abs(debiased[name]).max() < 0.05, name
        assert abs(debiased[name].mean()) < 0.01, name  # no bias left: sd of one draw is about 0.01
    assert biased["isotropic"].min() > 0.7  # about 0.75
    assert biased["decay k^-1/2"].min() > 0.1  # about 0.17
    assert biased["decay k^-1"].mean() > debiased["decay k^-1"].mean()


def test_cka_near_zero_for_independent_features() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((4000, 64)), rng.standard_normal((4000, 64))
    assert linear_cka(x, y, debiased=False) < 0.05  # expectation about sqrt(p q) / n = 0.016
    assert abs(linear_cka(x, y)) < 0.005


def test_cka_validation() -> None:
    with pytest.raises(ValueError, match="same number of rows"):
        linear_cka(np.zeros((4, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="x must be a 2-D"):
        linear_cka(np.zeros(4), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least 2"):
        linear_cka(np.ones((1, 3)), np.ones((1, 3)), debiased=False)
    with pytest.raises(ValueError, match="at least 4 examples for the debiased"):
        linear_cka(np.eye(3), np.eye(3))
    assert linear_cka(np.eye(3), np.eye(3), debiased=False) == pytest.approx(1.0)
    for debiased in (True, False):
        assert np.isnan(linear_cka(np.ones((5, 3)), np.random.default_rng(0).standard_normal((5, 2)),
                                   debiased=debiased))


def test_frozen_states_from_weight_distances() -> None:
    assert frozen_states([0.0, 0.0, 0.3, 0.0]).tolist() == [True, True, False, False]
    assert frozen_states([0.1, 0.0, 0.0]).tolist() == [False, False, False]
    assert frozen_states([0.0, 0.0]).tolist() == [True, True]
    assert frozen_states([0.0, np.nan, 0.0]).tolist() == [True, False, False]  # NaN: may have moved
    assert frozen_states([]).tolist() == []
    with pytest.raises(ValueError, match="relative_distance must be 1-D"):
        frozen_states(np.zeros((2, 2)))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random BERT with a sequence-classification head and its word-piece tokenizer."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.ascii_lowercase, *WORDS]
    path = tmp_path_factory.mktemp("drift-bert") / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(str(path))  # positional: vocab= in transformers 5, vocab_file= in 4
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 9)))) for _ in range(24)]
    return model, tokenizer, texts


def test_hidden_states_shapes_order_and_mode(tiny) -> None:
    model, tokenizer, texts = tiny
    model.train()
    states = hidden_states(model, tokenizer, texts, max_length=16, batch_size=5)
    assert model.training  # mode restored
    assert len(states) == 3 and all(s.shape == (len(texts), 32) and s.dtype == np.float64 for s in states)
    # length-sorted batching must not change the values or their order
    one = hidden_states(model, tokenizer, texts[3:4], max_length=16)
    np.testing.assert_allclose(one[2][0], states[2][3], atol=1e-5)
    enc = tokenizer(texts[3:4], return_tensors="pt")
    model.eval()
    with torch.no_grad():
        ref = model.bert(**enc).last_hidden_state.mean(1)[0].numpy()
    np.testing.assert_allclose(states[2][3], ref, atol=1e-5)


def test_identical_copies_have_cka_one_and_distance_zero(tiny) -> None:
    model, tokenizer, texts = tiny
    twin = copy.deepcopy(model)
    cka = layer_cka(model, twin, tokenizer, texts, max_length=16)
    assert list(cka.columns) == ["layer", "cka"] and list(cka["layer"]) == [0, 1, 2]
    np.testing.assert_allclose(cka["cka"], 1.0, atol=1e-9)
    dist = weight_distance(model, twin)
    assert list(dist["layer"]) == ["embeddings", "encoder.layer.0", "encoder.layer.1"]
    assert (dist["relative_distance"] == 0).all()


def test_frozen_layers_do_not_drift(tiny) -> None:
    model, tokenizer, texts = tiny
    tuned = copy.deepcopy(model)
    for module in (tuned.bert.embeddings, tuned.bert.encoder.layer[0]):
        for param in module.parameters():
            param.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in tuned.parameters() if p.requires_grad], lr=1e-2)
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    labels = torch.tensor([i % 2 for i in range(len(texts))])
    tuned.train()
    for _ in range(4):
        optimizer.zero_grad()
        tuned(**enc, labels=labels).loss.backward()
        optimizer.step()

    dist = weight_distance(model, tuned).set_index("layer")["relative_distance"]
    assert dist["embeddings"] == 0.0 and dist["encoder.layer.0"] == 0.0
    assert dist["encoder.layer.1"] > 1e-3
    assert frozen_states(weight_distance(model, tuned)["relative_distance"]).tolist() == [True, True, False]
    cka = layer_cka(model, tuned, tokenizer, texts, max_length=16).set_index("layer")["cka"]
    assert cka[0] == pytest.approx(1.0, abs=1e-9) and cka[1] == pytest.approx(1.0, abs=1e-9)
    assert cka[2] < 1.0 - 1e-6
    biased = layer_cka(model, tuned, tokenizer, texts, max_length=16, debiased=False)
    assert biased["cka"].iloc[0] == pytest.approx(1.0, abs=1e-9) and biased["cka"].iloc[2] < 1.0 - 1e-6
    # a bare encoder (AutoModel-like) against the classifier gives the same table
    pd.testing.assert_frame_equal(weight_distance(model.bert, tuned).reset_index(drop=True),
                                  weight_distance(model, tuned).reset_index(drop=True))


def test_weight_distance_value_and_validation(tiny) -> None:
    model, _, _ = tiny
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        for param in scaled.bert.encoder.layer[1].parameters():
            param.mul_(1.5)
    dist = weight_distance(model, scaled).set_index("layer")["relative_distance"]
    assert dist["encoder.layer.1"] == pytest.approx(0.5, rel=1e-6)
    assert dist["encoder.layer.0"] == 0.0

    from transformers import BertConfig, BertModel

    other = BertModel(BertConfig(vocab_size=10, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, max_position_embeddings=64))
    with pytest.raises(ValueError, match="shape"):
        weight_distance(model, other)
    with pytest.raises(ValueError, match="texts"):
        layer_cka(model, model, None, "a single string")
    with pytest.raises(ValueError, match="at least 4 texts"):
        layer_cka(model, model, None, ["a", "b", "c"])
