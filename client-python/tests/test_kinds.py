"""The lock kinds against a real server: semaphores, read-write locks, reentrant holds keyed by a secret
holder key per thread or task, and the lock-delay after a lost holder.
"""

from __future__ import annotations

import asyncio
import threading
import unittest
from typing import List

import support
from edgelock import Client, LockHeld, ValidationError
from support import make_client, raw_force_release, raw_status, unique


@support.needs_server
class SemaphoreTest(unittest.TestCase):
    def test_grants_up_to_the_limit_in_permits(self) -> None:
        name = unique("sem")
        pool = make_client().semaphore(name, 3)
        one = pool.acquire(ttl=30)
        with pool.lock(permits=2, ttl=30) as two:
            self.assertEqual((two.permits, two.limit), (2, 3))
            self.assertEqual(raw_status(name)["permitsInUse"], 3)
            with self.assertRaises(LockHeld):
                pool.acquire(ttl=30, wait=0)
        again = pool.acquire(permits=2, ttl=30, wait=0)
        view = make_client().status(name)
        self.assertEqual((view["kind"], view["holderCount"]), ("semaphore", 2))
        self.assertEqual([h["token"] for h in view["holders"]], [one.token, again.token])
        # Holders come in pages, in token order: the page after `one` starts at `again`.
        page = make_client().status(name, after=one.token)
        self.assertEqual([h["token"] for h in page["holders"]], [again.token])
        one.release()
        again.release()

    def test_every_user_must_state_the_same_limit(self) -> None:
        name = unique("sem-limit")
        lease = make_client().semaphore(name, 2).acquire(ttl=30)
        with self.assertRaises(ValidationError) as caught:
            make_client().semaphore(name, 5).acquire(ttl=30, wait=0)
        self.assertEqual((caught.exception.code, caught.exception.status), ("limit_mismatch", 409))
        lease.release()


@support.needs_server
class ReadWriteLockTest(unittest.TestCase):
    def test_readers_share_and_a_writer_excludes_them(self) -> None:
        name = unique("rw")
        config = make_client().rwlock(name)
        first = config.read(ttl=30).acquire()
        with config.read(ttl=30, wait=0) as second:
            self.assertEqual((first.mode, second.mode), ("shared", "shared"))
            self.assertEqual(len(raw_status(name)["holders"]), 2)
            with self.assertRaises(LockHeld):
                config.write(ttl=30, wait=0).acquire()
        first.release()
        with config.write(ttl=30, wait=5) as writer:
            self.assertEqual(writer.mode, "exclusive")
            with self.assertRaises(LockHeld):
                config.read(ttl=30, wait=0).acquire()


@support.needs_server
class ReentrantTest(unittest.TestCase):
    def enter_twice(self, locks: Client, name: str) -> List:
        """[outer, inner] holds of one lease."""
        outer = locks.acquire(name, ttl=30, reentrant=True)
        inner = locks.acquire(name, ttl=30, reentrant=True, wait=0)
        return [outer, inner]

    def enter_and_leave_twice(self, locks: Client, name: str) -> None:
        """Enters twice and releases both holds, outer first: the lock is free again."""
        for lease in self.enter_twice(locks, name):
            lease.release()
        self.assertFalse(raw_status(name)["held"])

    def test_the_same_thread_re_enters_and_each_hold_is_released_on_its_own(self) -> None:
        name = unique("reentrant")
        locks = make_client()
        outer, inner = self.enter_twice(locks, name)
        self.assertEqual((inner.token, inner.hold_count), (outer.token, 2))
        self.assertNotEqual(inner.lease_id, outer.lease_id)
        # Another thread of the same client has another holder key: it must wait like anyone else.
        refused: List[BaseException] = []

        def other_thread() -> None:
            try:
                locks.acquire(name, ttl=30, reentrant=True, wait=0).release()
            except LockHeld as error:
                refused.append(error)

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        self.assertEqual(len(refused), 1)
        # Outer first: the inner hold still holds the lock, and its own release frees it.
        self.assertEqual(outer.release().get("holdCount"), 1)
        self.assertTrue(raw_status(name)["held"])
        self.assertEqual(inner.release().get("holdCount"), 0)
        self.assertFalse(raw_status(name)["held"])

    def test_nested_with_blocks_re_enter(self) -> None:
        name = unique("reentrant-with")
        locks = make_client()
        self.enter_and_leave_twice(locks, name)
        with locks.lock(name, ttl=30, reentrant=True) as outer:
            with locks.lock(name, ttl=30, reentrant=True, wait=0) as inner:
                self.assertEqual((inner.token, inner.hold_count), (outer.token, 2))
            self.assertEqual(raw_status(name)["holders"][0]["holdCount"], 1)
        self.assertFalse(raw_status(name)["held"])

    def test_each_asyncio_task_is_its_own_holder(self) -> None:
        name = unique("reentrant-task")
        locks = make_client()
        self.enter_and_leave_twice(locks, name)

        async def main() -> None:
            async with locks.alock(name, ttl=30, reentrant=True) as outer:
                async with locks.alock(name, ttl=30, reentrant=True, wait=0) as inner:
                    self.assertEqual(inner.hold_count, 2)
                with self.assertRaises(LockHeld):  # another task: another holder
                    await asyncio.create_task(locks.aacquire(name, ttl=30, reentrant=True, wait=0))
                view = await asyncio.to_thread(raw_status, name)
                self.assertEqual([(h["token"], h["holdCount"]) for h in view["holders"]], [(outer.token, 1)])

        asyncio.run(main())
        self.assertFalse(raw_status(name)["held"])


@support.needs_server
class LockDelayTest(unittest.TestCase):
    def test_a_lost_lease_keeps_the_lock_closed_for_its_lock_delay(self) -> None:
        name = unique("delay")
        locks = make_client()
        lease = locks.acquire(name, ttl=30, lock_delay=0.8)
        raw_force_release(name)
        self.assertIsNotNone(raw_status(name)["lockDelayUntil"])
        with self.assertRaises(LockHeld) as caught:
            locks.acquire(name, ttl=30, wait=0)
        self.assertEqual(caught.exception.code, "lock_delay")
        self.assertGreater(caught.exception.retry_after, 0)
        with locks.lock(name, ttl=30, wait=10) as after:  # waits the delay out
            self.assertEqual(after.token, lease.token + 1)


if __name__ == "__main__":
    unittest.main()
