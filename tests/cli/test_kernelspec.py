"""The physviz kernel spec: shipped with the package, and `physviz kernelspec install` for other environments."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from tests.paths import REPO
PHYSVIZ = str(Path(sys.executable).with_name("physviz"))


def _physviz(*args: str, python: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    argv = [python, "-m", "physviz", *args] if python else [PHYSVIZ, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def _run_in_kernel(spec_dir: Path, name: str, code: str) -> str:
    """Start the kernel `name` found in `spec_dir`, run `code`, return what it printed."""
    ksm = KernelSpecManager(kernel_dirs=[str(spec_dir)], ensure_native_kernel=False)
    km = KernelManager(kernel_name=name, kernel_spec_manager=ksm)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    printed: list[str] = []
    try:
        kc.wait_for_ready(timeout=90)
        reply = kc.execute_interactive(
            code, timeout=90,
            output_hook=lambda m: printed.append(m["content"]["text"]) if m["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return "".join(printed)


def test_shipped_spec_is_installed_with_the_package():
    source = json.loads((REPO / "kernels" / "physviz" / "kernel.json").read_text())
    assert source["display_name"] == "Python (physviz)" and source["language"] == "python"
    assert source["argv"][1:] == ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert source["env"]["PANEL_INLINE"] == "true"  # Panel must never ask a CDN
    installed = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "physviz"
    assert json.loads((installed / "kernel.json").read_text()) == source
    for size in (32, 64):
        data = (installed / f"logo-{size}x{size}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(data[16:20], "big") == size and int.from_bytes(data[20:24], "big") == size
    assert "physviz" in KernelSpecManager().find_kernel_specs()


def test_install_user_writes_this_python_and_the_kernel_imports_physviz(tmp_path):
    data_dir = tmp_path / "jupyter_data"
    out = _physviz("kernelspec", "install", "--user", env={"JUPYTER_DATA_DIR": str(data_dir)})
    assert out.returncode == 0, out.stderr
    folder = data_dir / "kernels" / "physviz"
    assert str(folder) in out.stdout
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable and os.path.isabs(spec["argv"][0])
    assert spec["display_name"] == "Python (physviz)"
    assert {p.name for p in folder.iterdir()} >= {"kernel.json", "logo-32x32.png", "logo-64x64.png"}

    printed = _run_in_kernel(data_dir / "kernels", "physviz",
                             "import os, sys, physviz; print(sys.executable); print(physviz.__file__); "
                             "print(os.environ.get('PANEL_INLINE'))")
    exe, module, inline = printed.split()
    assert os.path.realpath(exe) == os.path.realpath(sys.executable)
    assert Path(module).resolve() == (REPO / "physviz" / "__init__.py").resolve()
    assert inline == "true"


def test_sys_prefix_of_another_environment_starts_that_environment(tmp_path):
    """Run from a second venv, the spec lands in that venv and its kernel is that venv's Python."""
    venv = tmp_path / "other env"  # a space in the path must survive
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    # The second environment sees this one's packages (physviz, ipykernel) through a .pth file.
    (purelib / "physviz_parent.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = str(venv / "bin" / "python")

    out = _physviz("kernelspec", "install", "--sys-prefix", "--name", "physviz-other",
                   "--display-name", "physviz (other env)", "--env", "PHYSVIZ_TEST_MARK=42", python=python)
    assert out.returncode == 0, out.stderr
    folder = venv / "share" / "jupyter" / "kernels" / "physviz-other"
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["argv"][0] == python
    assert spec["display_name"] == "physviz (other env)"
    assert spec["env"] == {"PANEL_INLINE": "true", "PHYSVIZ_TEST_MARK": "42"}

    printed = _run_in_kernel(folder.parent, "physviz-other",
                             "import os, sys, physviz; print(sys.prefix); print(os.environ['PHYSVIZ_TEST_MARK'])")
    prefix, mark = printed.strip().splitlines()
    assert os.path.realpath(prefix) == os.path.realpath(venv)
    assert os.path.realpath(prefix) != os.path.realpath(sys.prefix)
    assert mark == "42"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--user", "--sys-prefix"], "not allowed with argument"),
        (["--name", "no spaces please"], "Kernel name 'no spaces please' is not valid"),
        (["--env", "NOEQUALS"], "--env 'NOEQUALS' is not KEY=VALUE"),
    ],
)
def test_bad_options_get_one_clear_line(tmp_path, args, message):
    out = _physviz("kernelspec", "install", "--prefix", str(tmp_path), *args) if "--user" not in args \
        else _physviz("kernelspec", "install", *args)
    assert out.returncode == 2
    assert message in out.stderr
    assert not (tmp_path / "share").exists()
