"""The Python mirror of the wire contract equals client/src/protocol.ts (its one definition), and every module
of the package is Python 3.9 syntax. No server needed.
"""

from __future__ import annotations

import ast
import re
import unittest

import support  # noqa: F401  (puts the package on sys.path)
from edgelock import protocol

PROTOCOL_TS = support.REPO_ROOT / "client" / "src" / "protocol.ts"
SOURCES = sorted((support.PACKAGE_ROOT / "src" / "edgelock").glob("*.py"))


@unittest.skipUnless(PROTOCOL_TS.exists(), "client/src/protocol.ts is not next to this package")
class ProtocolMirrorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.ts = PROTOCOL_TS.read_text()

    def test_numeric_limits_equal_the_typescript_constants(self) -> None:
        limits = dict(re.findall(r"^export const ([A-Z_]+) = ([\d_]+);", self.ts, re.M))
        self.assertGreaterEqual(len(limits), 10)
        for name, value in limits.items():
            with self.subTest(name=name):
                self.assertEqual(getattr(protocol, name), int(value.replace("_", "")))

    def test_error_codes_equal_the_typescript_table(self) -> None:
        block = re.search(r"export const PROBLEMS = \{(.*?)\n\} as const;", self.ts, re.S)
        assert block is not None
        codes = {code: int(status) for code, status in re.findall(r"(\w+): \{ status: (\d+),", block.group(1))}
        self.assertEqual(protocol.ERROR_CODES, codes)

    def test_patterns_and_lists_equal_the_typescript_ones(self) -> None:
        for name in ("LOCK_NAME_PATTERN", "LEASE_ID_PATTERN"):
            source = re.search(rf"export const {name} = /(.*?)/;", self.ts)
            assert source is not None
            self.assertEqual(getattr(protocol, name).pattern, source.group(1), name)
        for name in ("LOCK_MODES", "NOT_HELD_REASONS"):
            source = re.search(rf"export const {name} = \[(.*?)\] as const;", self.ts, re.S)
            assert source is not None
            self.assertEqual(getattr(protocol, name), tuple(re.findall(r'"(\w+)"', source.group(1))), name)


class PythonVersionTest(unittest.TestCase):
    def test_every_module_is_python_3_9_syntax_with_postponed_annotations(self) -> None:
        self.assertGreater(len(SOURCES), 5)
        for path in SOURCES:
            with self.subTest(module=path.name):
                text = path.read_text()
                # Fails on 3.10+ syntax such as `match` statements or parenthesized context managers.
                ast.parse(text, filename=str(path), feature_version=(3, 9))
                if path.name != "__init__.py":
                    # `X | None` annotations stay strings, so they never run on 3.9.
                    self.assertIn("from __future__ import annotations", text)


if __name__ == "__main__":
    unittest.main()
