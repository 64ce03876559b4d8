"""Analysis of fields as xarray: isotropic and per-axis power spectra, The Well's error metrics.

Everything here works on numpy and xarray; torch is never imported. Submodules load on
first use, so `import physviz.analysis` itself is light.
"""
from __future__ import annotations

from physviz._lazy import lazy_attributes

_LAZY = {
    "power_spectrum": "physviz.analysis.spectra",
    "metrics": "physviz.analysis.error_metrics",
    "METRIC_NAMES": "physviz.analysis.error_metrics",
    "mse": "physviz.analysis.error_metrics",
    "nmse": "physviz.analysis.error_metrics",
    "rmse": "physviz.analysis.error_metrics",
    "nrmse": "physviz.analysis.error_metrics",
    "vmse": "physviz.analysis.error_metrics",
    "vrmse": "physviz.analysis.error_metrics",
    "vrmse_array": "physviz.analysis.error_metrics",
    "mpp_nrmse": "physviz.analysis.error_metrics",
    "binned_spectral_mse": "physviz.analysis.error_metrics",
    "binned_spectral_nmse": "physviz.analysis.error_metrics",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_attributes("physviz.analysis", globals(), _LAZY)
