"""Fused CPU kernels of the inference path (cpu_kernels.cpp), compiled once per machine on first use."""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cpu_kernels.cpp")
ENV = "PHYSVIZ_CPU_KERNELS"  # "0" turns the kernels off (the eager ops run instead)
CACHE_ENV = "PHYSVIZ_KERNEL_CACHE"  # where the build goes (default ~/.cache/physviz/kernels)
FLAGS = ["-O3", "-march=native", "-fopenmp", "-DNDEBUG"]

_lock = threading.Lock()
_state: dict[str, Any] = {"module": None, "tried": False, "disabled": 0}


def build_dir() -> Path:
    """The build folder: one per source, flags, torch install, Python and CPU model (the code uses -march=native)."""
    import sys

    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "physviz" / "kernels")
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), "")
    parts = [SOURCE.read_text(), " ".join(FLAGS), torch.__version__, str(Path(torch.__file__).parent), sys.version, cpu]
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return root / key[:16]


@contextlib.contextmanager
def _interpreter_bin_on_path() -> Iterator[None]:
    """Put this interpreter's bin folder on PATH while the kernels build, then restore PATH.

    torch's extension builder runs `ninja` from PATH, and the venv's own (pip's ninja) is not
    on it when the venv is not activated.
    """
    import sys

    old = os.environ.get("PATH")
    bindir = str(Path(sys.executable).parent)
    if bindir in (old or "").split(os.pathsep):
        yield
        return
    os.environ["PATH"] = os.pathsep.join([bindir, old or ""])
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = old


def _load() -> Any:
    from torch.utils.cpp_extension import load

    d = build_dir()
    d.mkdir(parents=True, exist_ok=True)
    if not any(d.glob("*.so")):
        log.warning("physviz: compiling the fused CPU kernels (once per machine, about a minute) into %s", d)
    with _interpreter_bin_on_path():
        return load(name="physviz_cpu_kernels", sources=[str(SOURCE)], extra_cflags=FLAGS, extra_ldflags=["-fopenmp"],
                    build_directory=str(d), verbose=False)


def kernels() -> Any | None:
    """The compiled module, or None when turned off (PHYSVIZ_CPU_KERNELS=0, `disabled()`) or not buildable here."""
    if _state["disabled"] or os.environ.get(ENV, "1") == "0":
        return None
    if not _state["tried"]:
        with _lock:
            if not _state["tried"]:
                try:
                    _state["module"] = _load()
                except Exception as exc:  # no compiler, no headers: the eager path is exact, only slower
                    warnings.warn(f"physviz: the fused CPU kernels could not be built ({type(exc).__name__}: "
                                  f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}); "
                                  f"the model runs its eager path. Set {ENV}=0 to skip the attempt.",
                                  RuntimeWarning, stacklevel=2)
                _state["tried"] = True
    return _state["module"]


def usable(*tensors: torch.Tensor) -> Any | None:
    """The kernels when no autograd graph is recorded, no CPU autocast is on, and every tensor is float32 on CPU."""
    if torch.is_grad_enabled() or torch.is_autocast_enabled("cpu"):
        return None
    for t in tensors:
        if t.device.type != "cpu" or t.dtype != torch.float32:
            return None
    return kernels()


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the eager ops instead of the kernels inside this block (for comparisons and tests)."""
    with _lock:
        _state["disabled"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["disabled"] -= 1


def available() -> bool:
    """Whether the kernels are built (building them if need be) and turned on."""
    return kernels() is not None


def main() -> int:
    """`python -m physviz.model.cpu_kernels`: build the kernels now (setup does it, so no notebook waits for it)."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if os.environ.get(ENV, "1") == "0":
        print(f"{ENV}=0: the fused CPU kernels are turned off; nothing to build.")
        return 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok = available()
    for w in caught:
        print(w.message)
    print(f"fused CPU kernels: {'ready in ' + str(build_dir()) if ok else 'not built (the eager path runs instead)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
