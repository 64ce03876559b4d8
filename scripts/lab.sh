#!/usr/bin/env bash
# Open the physviz quickstart in JupyterLab, setting up .venv first if needed.
#
#   bash scripts/lab.sh
#   bash scripts/lab.sh --port 8899 --IdentityProvider.token=abc
#
# Defaults: --ip 127.0.0.1 (this machine only), the repository as the root
# folder, the notebook as the start page, --allow-root when run as root,
# --no-browser when there is no display to open a browser on. Any argument
# given here is passed on to `jupyter lab` and wins over these defaults.
# The notebook makes the sample data it needs itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-env.sh

notebook="examples/quickstart.ipynb"
[ -f "$notebook" ] || { echo "[physviz lab] error: $notebook is missing from $(pwd)" >&2; exit 1; }

has_option() {  # has_option NAME ARGS...: is --NAME (or --NAME=..., --ServerApp.NAME) among ARGS?
    local name="$1" a; shift
    for a in "$@"; do
        case "$a" in
            "--$name"|"--$name="*|"--ServerApp.$name"|"--ServerApp.$name="*) return 0 ;;
        esac
    done
    return 1
}

defaults=()
has_option ip "$@" || defaults+=(--ip 127.0.0.1)
# Serve the whole repository (JupyterLab would otherwise root itself at the
# notebook's folder, examples/).
if ! has_option root_dir "$@" && ! has_option notebook-dir "$@" && ! has_option notebook_dir "$@"; then
    defaults+=("--ServerApp.root_dir=$(pwd)")
fi
# The URL printed for the browser (and "/") opens the notebook itself.
has_option default_url "$@" || has_option LabApp.default_url "$@" \
    || defaults+=("--LabApp.default_url=/lab/tree/$notebook")
if [ "$(id -u)" -eq 0 ] && ! has_option allow-root "$@" && ! has_option allow_root "$@"; then
    defaults+=(--allow-root)
fi
if [ "$(uname -s)" != "Darwin" ] && [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ -z "${BROWSER:-}" ] \
    && ! has_option browser "$@" && ! has_option no-browser "$@" && ! has_option open_browser "$@"; then
    defaults+=(--no-browser)
    echo "[physviz lab] no display found: open the URL printed below in your browser"
fi

# (The arguments given are not echoed: they may hold a token.)
echo "[physviz lab] .venv/bin/jupyter lab $notebook ${defaults[*]-}${1:+ ...}"
exec .venv/bin/jupyter lab "$notebook" ${defaults[@]+"${defaults[@]}"} "$@"
