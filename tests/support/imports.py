"""Which modules a piece of code imports, seen from a fresh interpreter (this one has long
since imported everything), for the import-boundary tests.

    loaded = modules_after("import serving.server")
    assert "serving.server" in loaded and within(loaded, ["kfp"]) == []
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.trainer_runs import REPO


def modules_after(code: str) -> list[str]:
    """sys.modules, sorted, once `code` has run in a new interpreter at the repo root."""
    script = f"{code}\nimport json as _json, sys as _sys\nprint(_json.dumps(sorted(_sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def within(loaded: list[str], packages) -> list[str]:
    """The loaded modules that are one of `packages` or inside one."""
    return [m for m in loaded if any(m == p or m.startswith(p + ".") for p in packages)]
