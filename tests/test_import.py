"""`import physviz` stays light: no torch, panel, holoviews, xarray or h5py until used."""
from __future__ import annotations

import subprocess
import sys


def test_import_pulls_in_no_heavy_modules():
    code = (
        "import sys, physviz, physviz.fields, physviz.errors, physviz.jobs, physviz.server, physviz.cli;"
        "heavy = [m for m in ('torch', 'panel', 'holoviews', 'bokeh', 'xarray', 'h5py', 'matplotlib') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_lazy_names_resolve():
    import physviz

    assert callable(physviz.open_fields) and callable(physviz.to_well)
    assert physviz.errors.PhysvizError.__name__ == "PhysvizError"
    assert "open_fields" in dir(physviz)
