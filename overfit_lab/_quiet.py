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

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


@contextmanager
def quiet_saving() -> Iterator[None]:
    """No "Writing model shards" progress bar on stderr while a model is saved."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
