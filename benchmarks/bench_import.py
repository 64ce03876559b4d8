"""Start-up: `import physviz` against `import xarray` and `import numpy`, each in a fresh interpreter."""
from __future__ import annotations

from benchmarks.common import Result, time_python


def run(quick: bool) -> list[Result]:
    """Time imports in fresh interpreters (the empty interpreter's start is subtracted)."""
    repeats = 5 if quick else 15
    ours = time_python("import physviz", repeats)
    numpy = time_python("import numpy", repeats)
    xarray = time_python("import xarray", repeats)
    fields = time_python("import physviz; physviz.open_fields", repeats)
    from physviz.model.pretrained import BUNDLED, WEIGHTS

    rows = []
    if (WEIGHTS / BUNDLED["bundled"]).is_file():
        pre = time_python("import physviz; physviz.load_pretrained()", max(3, repeats // 3))
        torch = time_python("import torch", max(3, repeats // 3))
        rows.append(Result("start-up", "import physviz; load_pretrained()", pre, torch, "import torch",
                           note="budget: loads in under 2 s on CPU (includes importing torch)"))
    return [
        Result("start-up", "import physviz", ours, numpy, "import numpy", note="budget: under 1 s"),
        Result("start-up", "physviz.open_fields first use", fields, xarray, "import xarray",
               note="loads xarray and h5py on first use"),
        *rows,
    ]
