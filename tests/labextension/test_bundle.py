"""The prebuilt JupyterLab extension in physviz/labextension: built from the sources in labextension/, installed.

The build records the SHA-256 of the sources (labextension/source_hash.py); a source change without a
rebuild fails here. The bundle is a production build that shares JupyterLab's packages, its settings
schema is the source schema, and `jupyter labextension list` in this environment shows it enabled.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO

SOURCES = REPO / "labextension"
BUILT = REPO / "physviz" / "labextension"


def _source_hash_module():
    spec = importlib.util.spec_from_file_location("physviz_source_hash", SOURCES / "source_hash.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bundle_was_built_from_these_sources():
    hashing = _source_hash_module()
    recorded = hashing.recorded_hash()
    assert recorded, "physviz/labextension has no source-hash.txt: build it with `bash scripts/setup-env.sh`"
    assert recorded == hashing.source_hash(), (
        "labextension/ changed since physviz/labextension was built; rebuild (`bash scripts/setup-env.sh`, or "
        "`jlpm build` in labextension/) and commit physviz/labextension")
    names = {p.relative_to(SOURCES).as_posix() for p in hashing.source_files()}
    assert {"src/index.ts", "src/sidebar.ts", "src/form.ts", "schema/plugin.json", "package-lock.json"} <= names


def test_the_hash_sees_a_changed_source(tmp_path: Path):
    import shutil

    hashing = _source_hash_module()
    copy = tmp_path / "labextension"
    for path in hashing.source_files():
        target = copy / path.relative_to(SOURCES)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    assert hashing.source_hash(copy) == hashing.source_hash()
    (copy / "src" / "chart.ts").write_text((copy / "src" / "chart.ts").read_text() + "\n// edited\n")
    assert hashing.source_hash(copy) != hashing.source_hash()


def test_the_bundle_is_a_small_production_build_sharing_jupyterlab():
    meta = json.loads((BUILT / "package.json").read_text())
    assert meta["name"] == "physviz" and meta["jupyterlab"]["extension"] is True
    entry = BUILT / meta["jupyterlab"]["_build"]["load"]
    assert entry.is_file(), entry
    static = list((BUILT / "static").iterdir())
    total = sum(p.stat().st_size for p in static)
    assert total < 400_000, f"the bundle is {total} bytes: is it a development build, or bundling JupyterLab?"
    code = "".join(p.read_text(errors="replace") for p in static if p.suffix == ".js")
    # production: minified, no eval-source-map modules, no source maps
    assert "eval(" not in code and not any(p.suffix == ".map" for p in static)
    assert len(code) / (code.count("\n") + 1) > 150, "the bundle is not minified"
    assert "physviz-JobsPanel" in code and "physviz:new-finetune" in code
    schema = json.loads((BUILT / "schemas" / "physviz" / "plugin.json").read_text())
    assert schema == json.loads((SOURCES / "schema" / "plugin.json").read_text())
    assert {"refreshInterval", "defaultBackend", "sshProfiles", "slurmProfiles"} <= set(schema["properties"])


def test_the_settings_hold_no_secrets():
    schema = json.loads((SOURCES / "schema" / "plugin.json").read_text())
    text = json.dumps(schema).lower()
    for word in ('"password"', '"passphrase"', '"private_key"', '"token"', '"secret"'):
        assert word not in text
    host = schema["properties"]["sshProfiles"]["items"]["properties"]["hosts"]["items"]["oneOf"][1]
    assert host["additionalProperties"] is False and set(host["properties"]) == {"host", "port", "user", "key_file"}


def test_pyproject_ships_it_and_jupyterlab_lists_it_enabled():
    text = (REPO / "pyproject.toml").read_text()
    assert '"physviz/labextension" = "share/jupyter/labextensions/physviz"' in text
    assert '"labextension/install.json" = "share/jupyter/labextensions/physviz/install.json"' in text
    jupyter = str(Path(sys.executable).with_name("jupyter"))
    out = subprocess.run([jupyter, "labextension", "list"], capture_output=True, text=True, timeout=120)
    listing = out.stdout + out.stderr
    line = next((ln for ln in listing.splitlines() if ln.strip().startswith("physviz ")), "")
    assert "enabled" in line and "OK" in line and "(python, physviz)" in line, listing
