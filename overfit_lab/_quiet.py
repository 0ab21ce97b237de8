"""transformers kept quiet while a model loads or is saved: its warnings ("newly initialized head")
and progress bars are the harness's to word, not the user's to read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet_loading", "quiet_saving"]


@contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers' warnings and progress bars off while a model loads (and back after)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with quiet_saving():
            yield
    finally:
        hf_logging.set_verbosity(verbosity)


@contextmanager
def quiet_saving() -> Iterator[None]:
    """No progress bar on stderr ("Writing model shards") while a model is saved (and back after)."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
