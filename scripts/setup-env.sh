#!/usr/bin/env bash
# Prepare the project's virtual environment (.venv at the repository root).
#
#   bash scripts/setup-env.sh            # the Python environment only
#   bash scripts/setup-env.sh --system   # also the Debian packages and the
#                                        # browser driver the tests need
#
# Idempotent: every step checks first and does nothing when already done, so
# scripts/test.sh and scripts/lab.sh call it on every run. The editable
# install of ".[test]" is redone only when pyproject.toml, this script, or the
# files the wheel copies into the environment (kernels/, jupyter-config/,
# physviz/labextension/) change; a stamp in .venv holds their hash.
#
# The JupyterLab extension (TypeScript in labextension/) is built into
# physviz/labextension with JupyterLab's builder the first time and whenever
# its sources change (Node >= 20.19 and npm; Debian's nodejs/npm packages are
# installed when node is missing). The built bundle is committed, so a
# machine without a new enough Node keeps it as long as it matches the sources.
# With --system, configurable-http-proxy (npm) is installed into
# .venv/share/physviz-node for the JupyterHub test.
#
# Environment:
#   PHYSVIZ_SKIP_SETUP=1  skip every install when .venv already exists
#   PHYSVIZ_PYTHON        interpreter that creates .venv (default: python3)
#
# It may also be sourced; it runs in a subshell either way, so it neither
# changes the caller's shell options nor its working directory.

physviz_setup() (
    set -euo pipefail

    local torch_version="2.13.0"
    local debian_packages=(chromium openssh-server openssh-client slurmctld slurmd slurm-client munge g++ python3-dev)

    say() { printf '[physviz setup] %s\n' "$*"; }
    die() { printf '[physviz setup] error: %s\n' "$*" >&2; exit 1; }

    local with_system=0 arg
    for arg in "$@"; do
        case "$arg" in
            --system) with_system=1 ;;
            -h|--help) sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; return 0 ;;
            *) die "unknown option '$arg' (known: --system)" ;;
        esac
    done

    local script root
    script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
    root="$(cd "$(dirname "$script")/.." && pwd)"
    cd "$root"

    local venv="$root/.venv"
    local py="$venv/bin/python"

    # Privileged commands: directly as root, else through sudo when present.
    as_root() {
        if [ "$(id -u)" -eq 0 ]; then
            "$@"
        elif command -v sudo >/dev/null 2>&1; then
            sudo "$@"
        else
            die "'$*' needs root; run it as root or install sudo"
        fi
    }

    apt_install() {
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
    }

    write_lab_overrides() {
        # Stop JupyterLab's news and update pop-up (it asks the internet, and
        # covers the page). Other keys already in the file are kept.
        "$py" - "$venv/share/jupyter/lab/settings/overrides.json" <<'PYEOF'
import json, os, sys
path = sys.argv[1]
wanted = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
try:
    with open(path) as f:
        current = json.load(f)
except (OSError, ValueError):
    current = {}
merged = dict(current)
for plugin, settings in wanted.items():
    merged[plugin] = {**merged.get(plugin, {}), **settings}
if merged != current:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(merged, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    print("[physviz setup] wrote " + path)
PYEOF
    }

    # --- 0. Nothing to do when asked to skip and the environment exists.
    if [ "${PHYSVIZ_SKIP_SETUP:-0}" = "1" ] && [ -x "$py" ]; then
        say "PHYSVIZ_SKIP_SETUP=1: using $venv as it is"
        write_lab_overrides

        return 0
    fi

    # --- 1. The virtual environment.
    local base_python="${PHYSVIZ_PYTHON:-python3}"
    if [ -x "$py" ] && ! "$py" -c 'import sys' >/dev/null 2>&1; then
        say "$venv is broken (its python does not run); recreating it"
        "$base_python" -m venv --clear "$venv"
    fi
    if [ ! -x "$py" ]; then
        command -v "$base_python" >/dev/null 2>&1 \
            || die "'$base_python' not found; install Python 3.10 or newer (or set PHYSVIZ_PYTHON)"
        "$base_python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
            || die "$("$base_python" -V 2>&1) is too old; physviz needs Python 3.10 or newer (set PHYSVIZ_PYTHON)"
        if ! "$base_python" -c 'import ensurepip' >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
            # Debian's own python3 keeps venv support in a separate package.
            local pyver
            pyver="$("$base_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
            say "installing python$pyver-venv (Debian package: venv support)"
            as_root apt-get update
            apt_install "python$pyver-venv" || apt_install python3-venv
        fi
        say "creating $venv with $("$base_python" -V 2>&1)"
        "$base_python" -m venv "$venv"
        rm -f "$venv/.physviz-setup-stamp"
    fi

    pip() { "$py" -m pip "$@"; }
    local pip_upgraded=0
    upgrade_pip_once() {
        if [ "$pip_upgraded" -eq 0 ]; then
            say "upgrading pip"
            pip install --quiet --upgrade pip
            pip_upgraded=1
        fi
    }

    # --- 2. torch first: pinned, so pip takes the CPU wheel instead of
    #        pulling the CUDA build (gigabytes) as a dependency of ".[test]".
    local have_torch
    have_torch="$("$py" -c 'import importlib.metadata as m; print(m.version("torch").split("+")[0])' 2>/dev/null || true)"
    if [ "$have_torch" != "$torch_version" ]; then
        upgrade_pip_once
        say "installing torch==$torch_version${have_torch:+ (found $have_torch)}"
        pip install "torch==$torch_version"
    else
        say "torch $have_torch already installed"
    fi

    # --- 3. The package itself, editable, with every test dependency.
    local stamp_file="$venv/.physviz-setup-stamp" want_stamp have_stamp=""
    want_stamp="$("$py" - "$root" "$script" <<'PYEOF'
import hashlib, os, sys
root, script = sys.argv[1], sys.argv[2]
files = [os.path.join(root, "pyproject.toml"), script]
for sub in ("kernels", "jupyter-config", "physviz/labextension", "labextension/install.json"):
    for d, dirs, names in os.walk(os.path.join(root, sub)):
        dirs.sort()
        files += [os.path.join(d, n) for n in sorted(names)]
h = hashlib.sha256(root.encode() + b"\0" + sys.version.encode() + b"\0")
for path in files:
    h.update(os.path.relpath(path, root).encode() + b"\0")
    with open(path, "rb") as f:
        h.update(f.read())
print(h.hexdigest())
PYEOF
)"
    [ -f "$stamp_file" ] && have_stamp="$(cat "$stamp_file")"
    if [ "$want_stamp" != "$have_stamp" ] || ! "$py" -c 'import importlib.metadata as m; m.version("physviz")' >/dev/null 2>&1; then
        upgrade_pip_once
        say "installing physviz (editable) with the [test] extra; this takes a minute or two the first time"
        pip install -e ".[test]"
        printf '%s\n' "$want_stamp" > "$stamp_file"
    else
        say "physviz[test] up to date (pyproject.toml unchanged)"
    fi

    write_lab_overrides

    # --- 3b. The JupyterLab extension, rebuilt when its sources change (a stamp in .venv holds their hash).
    node_ok() {
        command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && node -e '
const [a, b] = process.versions.node.split(".").map(Number);
process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' >/dev/null 2>&1
    }
    local ext="$root/labextension" ext_stamp="$venv/.physviz-labextension-stamp" want_ext have_ext="" built_ext=""
    want_ext="$("$py" "$ext/source_hash.py")"
    [ -f "$ext_stamp" ] && have_ext="$(cat "$ext_stamp")"
    [ -f "$root/physviz/labextension/source-hash.txt" ] && built_ext="$(cat "$root/physviz/labextension/source-hash.txt")"
    if [ "$want_ext" != "$have_ext" ] || [ "$want_ext" != "$built_ext" ]; then
        if ! command -v node >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
            say "installing Debian nodejs and npm (to build the JupyterLab extension)"
            as_root apt-get update
            apt_install nodejs npm
        fi
        if node_ok; then
            say "building the JupyterLab extension (labextension/ -> physviz/labextension) with Node $(node --version)"
            local deps_stamp="$ext/node_modules/.physviz-deps" want_deps
            want_deps="$(cat "$ext/package.json" "$ext/package-lock.json" | "$py" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
            if [ ! -f "$deps_stamp" ] || [ "$(cat "$deps_stamp")" != "$want_deps" ]; then
                (cd "$ext" && npm ci --no-audit --no-fund)
                printf '%s\n' "$want_deps" > "$deps_stamp"
            fi
            (cd "$ext" && npx tsc && PATH="$venv/bin:$PATH" jupyter-builder build .)
            "$py" "$ext/source_hash.py" --write
            # the environment's copy (shared-data of the editable install) follows the new build
            pip install --quiet --no-deps -e "$root"
        elif [ "$want_ext" = "$built_ext" ]; then
            say "warning: no Node >= 20.19 here ($(node --version 2>/dev/null || echo 'no node')); keeping the committed build of the JupyterLab extension, which matches its sources" >&2
        else
            die "labextension/ changed since physviz/labextension was built, and building it needs Node >= 20.19 with npm (found: $(node --version 2>/dev/null || echo 'no node')); Debian 12's nodejs 18 is too old: install Node 20 from your distribution's newer packages or NodeSource, then rerun"
        fi
        printf '%s\n' "$want_ext" > "$ext_stamp"
    else
        say "JupyterLab extension up to date (labextension/ unchanged)"
    fi

    # --- 4. What the tests of the real parts need: Chromium (driven by
    #        Playwright, never a downloaded browser), sshd, Slurm and munge.
    if [ "$with_system" -eq 1 ]; then
        if command -v dpkg >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
            local missing=() pkg
            for pkg in "${debian_packages[@]}"; do
                dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
            done
            if [ "${#missing[@]}" -gt 0 ]; then
                say "installing Debian packages: ${missing[*]}"
                as_root apt-get update
                apt_install "${missing[@]}"
            else
                say "Debian packages present: ${debian_packages[*]}"
            fi
        else
            say "warning: no dpkg/apt-get here; install these yourself for the real-part tests: ${debian_packages[*]}" >&2
        fi
        # configurable-http-proxy (npm) for the JupyterHub test, kept inside .venv.
        local chp="$venv/share/physviz-node/node_modules/.bin/configurable-http-proxy"
        if [ -x "$chp" ]; then
            say "configurable-http-proxy present"
        elif command -v npm >/dev/null 2>&1; then
            say "installing configurable-http-proxy 5.3.0 (npm) into $venv/share/physviz-node"
            mkdir -p "$venv/share/physviz-node"
            npm install --prefix "$venv/share/physviz-node" --no-audit --no-fund --no-save configurable-http-proxy@5.3.0
        else
            say "warning: no npm here; the JupyterHub test needs configurable-http-proxy" >&2
        fi
        if "$py" -c 'import playwright' >/dev/null 2>&1; then
            say "playwright (Python) present"
        else
            say "installing playwright (Python package only; it drives the system chromium)"
            pip install playwright
        fi
    fi

    # The fused CPU kernels of the model's inference path compile once per machine (about a
    # minute); doing it here keeps the first notebook cell from waiting. Without a compiler the
    # model still runs (its eager path, exact but slower).
    say "building the fused CPU kernels (physviz.model.cpu_kernels)"
    "$py" -m physviz.model.cpu_kernels || say "warning: the fused CPU kernels did not build; inference runs its eager path" >&2

    say "environment ready: $venv"
)

physviz_setup "$@"
