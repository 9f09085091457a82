"""The test tiers mean what they say: collecting the unit tier imports no moto (its conftest
refuses the moto-backed fixtures at run time), and no test module or conftest imports another
test module or a conftest (shared helpers live in tests/support/)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.env import ROOT

TESTS = ROOT / "tests"

COLLECT_UNIT = """
import json
import sys

import pytest

code = pytest.main(["--collect-only", "-qq", "-p", "no:cacheprovider", "tests/unit"])
moto = sorted(name for name in sys.modules if name == "moto" or name.startswith("moto."))
print(json.dumps({"exit": int(code), "moto": moto}))
"""


def test_collecting_the_unit_tier_imports_no_moto() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run([sys.executable, "-c", COLLECT_UNIT], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["exit"] == 0, done.stdout[-3000:]
    assert not result["moto"], (f"collecting tests/unit imported moto ({', '.join(result['moto'][:3])}, ...): "
                                "the unit tier runs without it; a test that needs tables goes to tests/integration/")


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_tests_import_helpers_only_from_tests_support() -> None:
    sources = [path for path in sorted(TESTS.rglob("*.py")) if "fixtures" not in path.relative_to(TESTS).parts]
    # Test directories have no __init__.py: pytest puts each on sys.path, so `import test_x` would work too.
    not_helpers = {path.stem for path in sources if path.stem.startswith("test_")} | {"conftest"}
    offending = []
    for path in sources:
        for module in _imported_modules(path):
            parts = module.split(".")
            if (parts[0] == "tests" and parts[1:2] != ["support"]) or not_helpers & set(parts):
                offending.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offending, "\n".join(offending)
