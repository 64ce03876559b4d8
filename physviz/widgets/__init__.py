"""Interactive views over the layers below (Panel + HoloViews/Bokeh), all offline.

- ``FieldExplorer(ds)``: trajectory, field, time player, 3D slices, stats, hover.
- ``RolloutScrubber(truth, prediction)`` / ``RolloutScrubber.from_model(model, truth)``: truth, prediction and
  error on one player, VRMSE over time; PNG, GIF, MP4 and HTML export.
- ``RolloutRunner(model, truth)``: the scrubber's rollout without Panel: a worker thread filling a preallocated
  prediction Dataset, with ``state()``, ``wait(timeout)`` and ``stop()``.
- ``SpectrumComparer(truth, prediction)`` or ``scrubber.spectrum()``: E(k), ratio, k-time error map, binned errors.
- ``FineTuneLauncher`` / ``JobMonitor``: a form that submits a ``physviz.jobs.JobSpec``, a monitor that polls it.

Importing this package registers the ``ds.physviz`` accessor and imports xarray only; Panel, HoloViews and
torch load when a view is made.
"""
from __future__ import annotations

from physviz._lazy import lazy_attributes

from physviz.widgets import accessor as _accessor  # noqa: F401 - registers ds.physviz

_LAZY = {
    "FieldExplorer": "physviz.widgets.explorer",
    "RolloutScrubber": "physviz.widgets.scrubber",
    "RolloutRunner": "physviz.widgets.rollout_runner",
    "SpectrumComparer": "physviz.widgets.spectrum",
    "FineTuneLauncher": "physviz.widgets.jobs",
    "JobMonitor": "physviz.widgets.jobs",
    "ensure_panel": "physviz.widgets.base",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_attributes("physviz.widgets", globals(), _LAZY)
