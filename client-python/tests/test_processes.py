"""The seeds' counter test across OS processes: 3 processes x 200 increments of a shared file, each under
`with locks.lock(...)`, end at exactly 600, with 600 distinct fencing tokens.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import support
from support import unique

WORKER = Path(__file__).with_name("counter_worker.py")
PROCESSES = 3
INCREMENTS = 200


@support.needs_server
class CounterAcrossProcessesTest(unittest.TestCase):
    def test_three_processes_of_200_locked_increments_end_at_exactly_600(self) -> None:
        name = unique("counter")
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "counter"
            path.write_text("0")
            procs = [
                subprocess.Popen(
                    [sys.executable, str(WORKER), name, str(path), str(INCREMENTS)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(PROCESSES)
            ]
            outputs = [proc.communicate(timeout=240) for proc in procs]
            for proc, (out, err) in zip(procs, outputs):
                self.assertEqual(proc.returncode, 0, err)
            self.assertEqual(path.read_text(), str(PROCESSES * INCREMENTS))
        tokens = sorted(token for out, _ in outputs for token in json.loads(out))
        # Every critical section had its own grant: tokens 1..600, none twice.
        self.assertEqual(tokens, list(range(1, PROCESSES * INCREMENTS + 1)))


if __name__ == "__main__":
    unittest.main()
