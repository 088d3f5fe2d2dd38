"""asyncio against a real server: `async with locks.alock(...)` waits without blocking the event loop, the
decorator wraps coroutine functions, tasks exclude each other, a cancelled task's wait is dropped on the
server, and a lost lease raises on leaving.
"""

from __future__ import annotations

import asyncio
import unittest
from typing import List

import support
from edgelock import LeaseLost
from support import make_client, raw_force_release, raw_status, unique


async def status(name: str) -> dict:
    return await asyncio.to_thread(raw_status, name)


async def until(predicate, what: str) -> None:
    await asyncio.to_thread(support.wait_for, predicate, what)


@support.needs_server
class AsyncioTest(unittest.IsolatedAsyncioTestCase):
    async def test_alock_waits_without_blocking_the_event_loop(self) -> None:
        name = unique("async-wait")
        locks = make_client()
        holder = locks.acquire(name, ttl=30)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        async def release_once_the_loop_has_run() -> None:
            # Only a running loop gets here: if alock blocked it, the holder would never release, and the
            # alock below would run out of wait with LockHeld.
            while ticks < 20:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(holder.release)

        tick_task = asyncio.create_task(ticker())
        release_task = asyncio.create_task(release_once_the_loop_has_run())
        try:
            async with locks.alock(name, ttl=10, wait=15) as lease:
                self.assertGreaterEqual(ticks, 20)
                self.assertEqual(lease.token, holder.token + 1)
                self.assertTrue((await status(name))["held"])
        finally:
            tick_task.cancel()
            await release_task
        self.assertFalse((await status(name))["held"])

    async def test_the_decorator_wraps_coroutine_functions(self) -> None:
        name = unique("async-decorator")
        locks = make_client()

        @locks.synchronized(name, ttl=10, wait=10)
        async def rebuild(n: int) -> dict:
            await asyncio.sleep(0)
            return {"n": n, "view": await status(name)}

        result = await rebuild(3)
        self.assertEqual(result["n"], 3)
        self.assertTrue(result["view"]["held"])
        self.assertFalse((await status(name))["held"])

    async def test_tasks_of_one_loop_exclude_each_other(self) -> None:
        name = unique("async-tasks")
        locks = make_client()
        inside: List[int] = []
        tokens: List[int] = []

        async def work() -> None:
            for _ in range(10):
                async with locks.alock(name, ttl=10, wait=30) as lease:
                    inside.append(1)
                    self.assertEqual(len(inside), 1)
                    await asyncio.sleep(0.001)
                    tokens.append(lease.token)
                    inside.pop()

        await asyncio.gather(work(), work(), work())
        self.assertEqual(sorted(tokens), list(range(1, 31)))

    async def test_cancelling_a_waiting_task_drops_its_wait_on_the_server(self) -> None:
        name = unique("async-cancel")
        locks = make_client()
        holder = locks.acquire(name, ttl=30)

        async def wait_for_lock() -> None:
            async with locks.alock(name, ttl=10, wait=20):
                self.fail("granted while the holder still held the lock")

        task = asyncio.create_task(wait_for_lock())
        await until(lambda: raw_status(name)["waiters"] == 1, "the task's wait to queue")
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        self.assertEqual((await status(name))["waiters"], 0)
        holder.release()
        later = await locks.aacquire(name, ttl=10, wait=0)  # FIFO would refuse it behind a leftover waiter
        self.assertEqual(later.token, holder.token + 1)
        await asyncio.to_thread(later.release)

    async def test_a_force_released_lease_raises_lease_lost_on_leaving(self) -> None:
        name = unique("async-lost")
        with self.assertRaises(LeaseLost) as caught:
            async with make_client().alock(name, ttl=1) as lease:
                await asyncio.to_thread(raw_force_release, name)
                self.assertTrue(await asyncio.to_thread(lease.lost.wait, 10))
        self.assertEqual(caught.exception.reason, "forced")


if __name__ == "__main__":
    unittest.main()
