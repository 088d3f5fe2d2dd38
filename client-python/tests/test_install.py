"""The install proof, offline (no PyPI here): Debian's /usr/bin/python3 builds the wheel with setuptools and
wheel exactly as the README says, a clean venv installs it, and `python -I -c "import edgelock"` imports only
the standard library. Also: the package imports and its unit tests pass on Python 3.9 when one is installed.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path
from typing import List, Optional

import support

DEBIAN_PYTHON = Path("/usr/bin/python3")
IGNORED = shutil.ignore_patterns("__pycache__", "build", "dist", "*.egg-info")
# Run by the installed interpreter: fails if importing edgelock pulled in any module outside the stdlib.
IMPORT_CHECK = """
import sys
before = set(sys.modules)
import edgelock
client = edgelock.Client("http://127.0.0.1:9")
foreign = sorted(
    m for m in set(sys.modules) - before
    if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] != "edgelock"
)
assert not foreign, foreign
print(edgelock.__file__)
"""


def run(args: List[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def debian_python_problem() -> Optional[str]:
    if not DEBIAN_PYTHON.exists():
        return f"{DEBIAN_PYTHON} does not exist (install Debian's python3, python3-venv)"
    probe = subprocess.run([str(DEBIAN_PYTHON), "-c", "import venv, ensurepip"], capture_output=True)
    if probe.returncode != 0:
        return f"{DEBIAN_PYTHON} lacks venv/ensurepip (apt-get install python3-venv)"
    return None


class WheelInstallTest(unittest.TestCase):
    def setUp(self) -> None:
        problem = debian_python_problem()
        if problem is not None:
            self.skipTest(problem)

    def test_the_wheel_builds_offline_and_imports_from_a_clean_venv_with_the_stdlib_only(self) -> None:
        with tempfile.TemporaryDirectory(prefix="edgelock-wheel-") as scratch:
            work = Path(scratch)
            # A copy, so that the in-tree build (build/, *.egg-info) never touches the working tree.
            shutil.copytree(support.PACKAGE_ROOT, work / "client-python", ignore=IGNORED)
            python = str(DEBIAN_PYTHON)
            run([python, "-m", "venv", "--system-site-packages", "B"], work)
            run(["B/bin/pip", "wheel", "--no-index", "--no-build-isolation", "--no-deps", "-w", "dist",
                 "./client-python"], work)
            wheels = glob.glob(str(work / "dist" / "*.whl"))
            self.assertEqual(len(wheels), 1, wheels)
            with zipfile.ZipFile(wheels[0]) as wheel:
                names = wheel.namelist()
                metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
            self.assertIn("edgelock/py.typed", names)
            self.assertIn("edgelock/client.py", names)
            self.assertFalse([n for n in names if "tests" in n or n.endswith(".pyc")], names)
            self.assertIn("Requires-Python: >=3.9", metadata)
            self.assertNotIn("Requires-Dist", metadata)

            run([python, "-m", "venv", "C"], work)
            run(["C/bin/pip", "install", "--no-index", wheels[0]], work)
            where = run(["C/bin/python", "-I", "-c", IMPORT_CHECK], work).strip()
            self.assertTrue(where.startswith(str(work / "C")), where)


def python39() -> Optional[str]:
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = sorted(glob.glob(f"{pyenv_root}/versions/3.9*/bin/python3.9"))
    candidates.append(shutil.which("python3.9") or "")
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                               capture_output=True, text=True)
        if probe.stdout.strip() == "True":
            return candidate
    return None


class OldestPythonTest(unittest.TestCase):
    def test_the_package_imports_and_its_unit_tests_pass_on_python_3_9(self) -> None:
        interpreter = python39()
        if interpreter is None:
            self.skipTest("no Python 3.9 on this machine (the syntax check in test_protocol.py still ran)")
        here = Path(__file__).parent
        env = {k: v for k, v in os.environ.items() if k != "EDGELOCK_URL"}
        done = subprocess.run([interpreter, "-m", "unittest", "test_units", "test_errors", "test_protocol"],
                              cwd=here, capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("OK", done.stderr)


if __name__ == "__main__":
    unittest.main(argv=sys.argv)
