"""``[tracking] mlflow = true``: each cell published to MLflow as the runner commits it.

:class:`MlflowTracking` is a :class:`~overfit_lab.progress.RunObserver`; the application layer
(:func:`overfit_lab.app.run_suite`) hears the runner through it beside the terminal's display, and
exports the whole run (report included) once its report is written. A tracking store that fails
does not stop the run: the failure is told once, and ``overfit-lab export mlflow RUN_DIR`` can
publish the run later (it updates the same MLflow runs).
"""

from __future__ import annotations

from ..errors import OverfitLabError
from ..progress import RunObserver
from ..store import RunStore
from ..suite import TrackingSpec

__all__ = ["MlflowTracking"]


class MlflowTracking(RunObserver):
    """Exports each finished cell of the run in ``store`` to MLflow as ``spec`` says; ``warn``
    gets one line if the tracking store fails (then nothing more is tried in this run)."""

    def __init__(self, store: RunStore, spec: TrackingSpec, warn=None):
        self.store, self.spec, self.warn = store, spec, warn
        self.failed: str | None = None

    def cell_finished(self, cell, result) -> None:
        if self.failed is not None:
            return
        from .mlflow_export import export_cell

        try:
            export_cell(self.store.run_dir, cell.cell_id, store=self.store,
                        tracking_uri=self.spec.mlflow_tracking_uri, experiment=self.spec.mlflow_experiment)
        except Exception as exc:  # noqa: BLE001 - a tracker must never stop the run it tracks
            self.failed = str(exc) if isinstance(exc, OverfitLabError) else f"{type(exc).__name__}: {exc}"
            if self.warn is not None:
                self.warn(f"MLflow tracking stopped for this run: {self.failed} (publish it later with: "
                          f"overfit-lab export mlflow {self.store.run_dir})")
