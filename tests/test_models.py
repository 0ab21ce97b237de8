"""Behavioural tests for model loading, layer freezing and dropout overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from overfit_lab.errors import OverfitLabError
from overfit_lab.models import (
    dropout_modules,
    embeddings_module,
    encoder_layers,
    freeze,
    load_classifier,
    resolve_model_path,
    set_dropout,
)


@pytest.fixture(scope="module")
def bert_path(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture()
def bert(bert_path: Path):
    torch.manual_seed(0)
    return load_classifier(str(bert_path), ["neg", "pos"])


@pytest.fixture()
def distilbert():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(vocab_size=60, dim=32, n_layers=3, n_heads=2, hidden_dim=64,
                              max_position_embeddings=64, num_labels=3)
    torch.manual_seed(0)
    return DistilBertForSequenceClassification(config)


def _ids(modules) -> set[int]:
    return {id(m) for m in modules}


def _params(module: nn.Module) -> set[int]:
    return {id(p) for p in module.parameters()}


# --- structure ----------------------------------------------------------------------------------


def test_load_classifier_has_fresh_head(bert) -> None:
    assert bert.config.num_labels == 2
    assert bert.config.id2label == {0: "neg", 1: "pos"}
    assert bert.config.label2id == {"neg": 0, "pos": 1}
    assert bert.classifier.out_features == 2


def test_encoder_layers_and_embeddings_bert(bert) -> None:
    layers = encoder_layers(bert)
    assert len(layers) == 2
    assert layers is bert.bert.encoder.layer
    assert embeddings_module(bert) is bert.bert.embeddings


def test_encoder_layers_and_embeddings_distilbert(distilbert) -> None:
    layers = encoder_layers(distilbert)
    assert len(layers) == 3
    assert layers is distilbert.distilbert.transformer.layer
    assert embeddings_module(distilbert) is distilbert.distilbert.embeddings


def test_encoder_layers_missing() -> None:
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 2)

    with pytest.raises(OverfitLabError):
        encoder_layers(Plain())


# --- freezing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["bert", "distilbert"])
def test_freeze_embeddings_and_first_layer(which: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(which)
    base = model.bert if which == "bert" else model.distilbert
    stack = base.encoder.layer if which == "bert" else base.transformer.layer
    expected = _params(base.embeddings) | _params(stack[0])
    expected_count = sum(p.numel() for p in model.parameters() if id(p) in expected)
    total = sum(p.numel() for p in model.parameters())

    count = freeze(model, embeddings=True, layers=1)

    assert count == expected_count
    frozen = {id(p) for p in model.parameters() if not p.requires_grad}
    assert frozen == expected
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == total - expected_count
    # a second call freezes nothing new
    assert freeze(model, embeddings=True, layers=1) == 0


def test_freeze_layers_only_and_gradients(bert) -> None:
    count = freeze(bert, embeddings=False, layers=2)
    layer_params = _params(bert.bert.encoder.layer)
    assert count == sum(p.numel() for p in bert.bert.encoder.layer.parameters())
    assert {id(p) for p in bert.parameters() if not p.requires_grad} == layer_params
    bert.zero_grad()
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    bert(input_ids=ids, labels=torch.tensor([1])).loss.backward()
    for p in bert.bert.encoder.layer.parameters():
        assert p.grad is None
    assert bert.bert.embeddings.word_embeddings.weight.grad is not None
    assert bert.classifier.weight.grad is not None


@pytest.mark.parametrize("which", ["bert", "distilbert"])
def test_freeze_too_many_layers(which: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(which)
    n = len(encoder_layers(model))
    with pytest.raises(OverfitLabError) as info:
        freeze(model, embeddings=True, layers=n + 1)
    assert info.value.key == "strategies.freeze.layers"
    assert all(p.requires_grad for p in model.parameters())  # nothing frozen on failure


# --- dropout ----------------------------------------------------------------------------------


def test_dropout_modules_bert_groups(bert) -> None:
    groups = dropout_modules(bert)
    layers = bert.bert.encoder.layer
    assert _ids(groups["attention"]) == _ids(layer.attention.self.dropout for layer in layers)
    assert _ids(groups["hidden"]) == _ids(
        [bert.bert.embeddings.dropout]
        + [layer.attention.output.dropout for layer in layers]
        + [layer.output.dropout for layer in layers])
    assert _ids(groups["classifier"]) == {id(bert.dropout)}


def test_dropout_modules_distilbert_groups(distilbert) -> None:
    groups = dropout_modules(distilbert)
    layers = distilbert.distilbert.transformer.layer
    assert _ids(groups["attention"]) == _ids(layer.attention.dropout for layer in layers)
    assert _ids(groups["hidden"]) == _ids(
        [distilbert.distilbert.embeddings.dropout] + [layer.ffn.dropout for layer in layers])
    assert _ids(groups["classifier"]) == {id(distilbert.dropout)}


def test_set_dropout_bert(bert) -> None:
    set_dropout(bert, hidden=0.25, attention=0.35, classifier=0.45)
    layer = bert.bert.encoder.layer[0]
    assert layer.attention.self.dropout.p == 0.35
    assert bert.bert.encoder.layer[1].attention.self.dropout.p == 0.35
    assert layer.attention.output.dropout.p == 0.25
    assert layer.output.dropout.p == 0.25
    assert bert.bert.embeddings.dropout.p == 0.25
    assert bert.dropout.p == 0.45
    assert bert.config.hidden_dropout_prob == 0.25
    assert bert.config.attention_probs_dropout_prob == 0.35
    assert bert.config.classifier_dropout == 0.45


def test_set_dropout_distilbert(distilbert) -> None:
    set_dropout(distilbert, hidden=0.25, attention=0.35, classifier=0.45)
    for layer in distilbert.distilbert.transformer.layer:
        assert layer.attention.dropout.p == 0.35
        assert layer.ffn.dropout.p == 0.25
    assert distilbert.distilbert.embeddings.dropout.p == 0.25
    assert distilbert.dropout.p == 0.45
    assert distilbert.config.dropout == 0.25
    assert distilbert.config.attention_dropout == 0.35
    assert distilbert.config.seq_classif_dropout == 0.45


def test_bert_classifier_dropout_follows_hidden_when_unset(bert) -> None:
    assert bert.config.classifier_dropout is None
    attention_before = bert.bert.encoder.layer[0].attention.self.dropout.p
    set_dropout(bert, hidden=0.3)
    assert bert.dropout.p == 0.3
    assert bert.config.classifier_dropout == 0.3
    assert bert.bert.encoder.layer[0].output.dropout.p == 0.3
    assert bert.bert.encoder.layer[0].attention.self.dropout.p == attention_before
    assert bert.config.attention_probs_dropout_prob == attention_before


def test_bert_classifier_dropout_kept_when_configured() -> None:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, classifier_dropout=0.05)
    model = BertForSequenceClassification(config)
    set_dropout(model, hidden=0.3)
    assert model.dropout.p == 0.05
    assert model.config.classifier_dropout == 0.05
    assert model.bert.embeddings.dropout.p == 0.3


@pytest.mark.parametrize("which", ["bert", "distilbert"])
def test_zero_dropout_makes_training_mode_deterministic(which: str,
                                                        request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(which)
    ids = torch.tensor([[2, 10, 11, 12, 13, 14, 3], [2, 15, 16, 17, 18, 19, 3]])
    model.eval()
    with torch.no_grad():
        reference = model(input_ids=ids).logits
    model.train()
    with torch.no_grad():
        noisy = model(input_ids=ids).logits
    assert not torch.allclose(noisy, reference)  # the default dropout acts in training mode
    set_dropout(model, hidden=0.0, attention=0.0, classifier=0.0)
    with torch.no_grad():
        for _ in range(2):
            assert torch.allclose(model(input_ids=ids).logits, reference, atol=1e-6)


# --- model paths --------------------------------------------------------------------------------


def test_resolve_model_path_unknown_name_offline(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OverfitLabError) as info:
        resolve_model_path("someone/some-model", source="s.toml")
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message and "s.toml" in message
    assert info.value.key == "model.name"
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(OverfitLabError):
        resolve_model_path("someone/some-model")  # offline is the default


def test_resolve_model_path_hub_allowed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("someone/some-model") == "someone/some-model"


def test_resolve_model_path_directory_without_config(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    with pytest.raises(OverfitLabError) as info:
        resolve_model_path(str(tmp_path / "weights"))
    assert "config.json" in str(info.value)


def test_resolve_model_path_model_directory(bert_path: Path) -> None:
    assert resolve_model_path(str(bert_path)) == str(bert_path)


def test_load_classifier_bad_directory(tmp_path: Path) -> None:
    with pytest.raises(OverfitLabError):
        load_classifier(str(tmp_path), ["a", "b"])
