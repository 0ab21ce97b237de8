"""overfit-lab: tells whether and why a fine-tuned model overfits.

Public API::

    from overfit_lab import Suite, load_suite, run_suite, load_run

Downloads from the Hugging Face hub are off unless the user sets ``HF_HUB_OFFLINE=0``.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from .errors import OverfitLabError  # noqa: E402
from .runner import run_suite  # noqa: E402
from .store import RunResult, load_run  # noqa: E402
from .suite import Suite, load_suite  # noqa: E402

__all__ = ["OverfitLabError", "RunResult", "Suite", "load_run", "load_suite", "run_suite"]
__version__ = "0.1.0"
