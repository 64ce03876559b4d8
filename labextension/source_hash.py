"""The SHA-256 of the extension's sources, recorded beside the built bundle so CI can tell a stale build.

    python labextension/source_hash.py            # print the hash of the sources
    python labextension/source_hash.py --write    # record it in physviz/labextension/source-hash.txt (after a build)
    python labextension/source_hash.py --check    # exit 1 if the recorded hash is not the sources' hash
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE.parent / "physviz" / "labextension"
RECORD = OUTPUT / "source-hash.txt"
FILES = ("package.json", "package-lock.json", "tsconfig.json")
FOLDERS = ("src", "style", "schema")


def source_files(root: Path = HERE) -> list[Path]:
    """Every file the bundle is built from, in a fixed order."""
    out = [root / name for name in FILES]
    for folder in FOLDERS:
        out += sorted(p for p in (root / folder).rglob("*") if p.is_file())
    return out


def source_hash(root: Path = HERE) -> str:
    """SHA-256 over each source file's relative path and bytes (line endings as stored)."""
    h = hashlib.sha256()
    for path in source_files(root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def recorded_hash(record: Path = RECORD) -> str | None:
    """The hash written at the last build (None when there is no build)."""
    return record.read_text().strip() if record.is_file() else None


def main(argv: list[str]) -> int:
    now = source_hash()
    if "--write" in argv:
        RECORD.write_text(now + "\n")
        print(f"recorded {now} in {RECORD}")
    elif "--check" in argv:
        if recorded_hash() != now:
            print(f"physviz/labextension is stale: built from {recorded_hash()}, sources are {now}; "
                  "rebuild with `bash scripts/setup-env.sh` (or `jlpm build` in labextension/).", file=sys.stderr)
            return 1
        print(f"physviz/labextension matches its sources ({now})")
    else:
        print(now)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
