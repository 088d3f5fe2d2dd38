"""The seeds' counter test across OS processes: 3 processes x 200 increments of a shared file, each under
`with locks.lock(...)`, end at exactly 600, with 600 distinct fencing tokens. And a client inherited by a
forked child (Celery's prefork, multiprocessing) keeps working in both processes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import support
from support import make_client, unique

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


    @unittest.skipUnless(hasattr(os, "fork"), "no fork() on this platform")
    def test_a_client_inherited_by_a_forked_child_works_in_both_processes(self) -> None:
        name = unique("fork")
        locks = make_client()
        locks.acquire(name).release()  # leaves a keep-alive connection in the pool for the child to inherit
        context = multiprocessing.get_context("fork")
        results = context.Queue()

        def child() -> None:
            tokens = []
            for _ in range(20):
                with locks.lock(name, ttl=10, wait=30) as lease:
                    tokens.append(lease.token)
            results.put((locks.holder_key(), tokens))

        process = context.Process(target=child)
        process.start()
        tokens = []
        for _ in range(20):
            with locks.lock(name, ttl=10, wait=30) as lease:
                tokens.append(lease.token)
        child_key, child_tokens = results.get(timeout=60)
        process.join(30)
        self.assertEqual(process.exitcode, 0)
        # Both processes talked on their own connections: 41 grants in all, each seen by one process.
        self.assertEqual(sorted(tokens + child_tokens), list(range(2, 42)))
        self.assertNotEqual(child_key, locks.holder_key())  # another process is another reentrant holder


if __name__ == "__main__":
    unittest.main()
