"""A run exported for other tools: one JSON document of its analysis (:mod:`.json_export`) and
MLflow runs, a parent per run directory and a nested run per cell (:mod:`.mlflow_export`, needs
``pip install 'overfit-lab[mlflow]'``). Names load on first use, so importing this package needs
neither pandas nor mlflow.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "run_to_json": "json_export",
    "write_json": "json_export",
    "export_cell": "mlflow_export",
    "export_run": "mlflow_export",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, {name: f".{module}" for name, module in _EXPORTS.items()})
