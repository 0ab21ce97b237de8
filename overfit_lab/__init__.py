"""overfit-lab: tells whether and why a fine-tuned model overfits.

Public API::

    from overfit_lab import Suite, load_suite, run_suite, load_run, audit, check_run
    from overfit_lab import audit_trainer_run, export_model   # existing Trainer runs; a cell's model

Downloads from the Hugging Face hub are off unless the user sets ``HF_HUB_OFFLINE=0``.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"

# Imported on first use, so `overfit-lab list` or a bad suite does not wait for torch.
_EXPORTS = {
    "CheckReport": ".checks",
    "OverfitLabError": ".errors",
    "RunResult": ".analysis",
    "Suite": ".suite",
    "audit": ".app",
    "audit_trainer_run": ".app",
    "export_model": ".model_export",
    "check_run": ".checks",
    "load_run": ".analysis",
    "load_suite": ".suite",
    "run_suite": ".app",
}
__all__ = sorted(_EXPORTS)

from ._lazy import lazy_exports  # noqa: E402 - after the environment defaults

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
