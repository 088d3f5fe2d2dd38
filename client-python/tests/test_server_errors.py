"""Error answers of a real server reach the caller as the right exception class with the server's code and
status: every code this client can provoke with auth off (the rest are mapped in test_errors.py).
"""

from __future__ import annotations

import threading
import unittest
from typing import Any, Callable, List, Tuple

import support
from edgelock import ERROR_CODES, AuthError, Client, EdgelockError, LeaseLost, ServiceError, ValidationError
from support import make_client, unique, wait_for


@support.needs_server
class ServerErrorTest(unittest.TestCase):
    def assert_error(self, code: str, cls: type, call: Callable[[], Any]) -> EdgelockError:
        with self.assertRaises(cls) as caught:
            call()
        error = caught.exception
        self.assertEqual((error.code, error.status), (code, ERROR_CODES[code]), error)
        return error

    def test_refused_requests_are_validation_errors_with_the_servers_code(self) -> None:
        locks = make_client()
        name = unique("invalid")
        cases: List[Tuple[str, Callable[[], Any]]] = [
            ("invalid_ttl", lambda: locks.acquire(name, ttl=0.01)),
            ("invalid_owner", lambda: locks.acquire(name, owner="bell\x07")),
            ("invalid_lease_id", lambda: locks.acquire(name, lease_id="short")),
            ("invalid_mode", lambda: locks.acquire(name, mode="both")),
            ("invalid_limit", lambda: locks.semaphore(name, 0).acquire()),
            ("invalid_permits", lambda: locks.acquire(name, permits=2)),
            ("permits_exceed_limit", lambda: locks.semaphore(name, 2).acquire(permits=3)),
            ("invalid_holder_key", lambda: locks.acquire(name, reentrant=True, holder_key="short")),
            ("invalid_lock_delay", lambda: locks.acquire(name, lock_delay=61)),
            ("invalid_query", lambda: locks.status(name, after=-1)),
        ]
        for code, call in cases:
            with self.subTest(code=code):
                self.assert_error(code, ValidationError, call)
        self.assertFalse(support.raw_status(name)["held"])

    def test_a_used_lease_id_is_lease_ended_and_an_unknown_one_not_held(self) -> None:
        locks = make_client()
        name = unique("ended")
        lease = locks.acquire(name)
        lease.release()
        reuse = lease.lease_id
        ended = self.assert_error("lease_ended", LeaseLost, lambda: locks.acquire(name, lease_id=reuse))
        self.assertEqual(getattr(ended, "reason", None), "released")
        unknown = self.assert_error("not_held", LeaseLost, lambda: locks.renew_by_id(name, "u" * 32))
        self.assertEqual(getattr(unknown, "reason", None), "unknown")

    def test_a_wait_cancelled_by_a_release_of_its_lease_id_is_wait_cancelled(self) -> None:
        locks = make_client()
        name = unique("wait-cancelled")
        holder = locks.acquire(name, ttl=30)
        lease_id = "w" * 32
        errors: List[BaseException] = []

        def wait() -> None:
            try:
                locks.acquire(name, lease_id=lease_id, wait=20)
            except EdgelockError as error:
                errors.append(error)

        thread = threading.Thread(target=wait)
        thread.start()
        wait_for(lambda: support.raw_status(name)["waiters"] == 1, "the waiter to queue")
        self.assertEqual(locks.release_by_id(name, lease_id), {"released": False, "cancelled": True})
        thread.join(10)
        self.assertEqual(len(errors), 1)
        self.assertIsInstance(errors[0], LeaseLost)
        self.assertEqual(
            (errors[0].code, getattr(errors[0], "reason", None)), ("wait_cancelled", "cancelled")
        )
        holder.release()

    def test_a_path_that_is_not_the_api_is_not_found(self) -> None:
        wrong = Client(support.URL + "/not-the-api", api_key=support.TOKEN)
        self.assert_error("not_found", ServiceError, lambda: wrong.status(unique("nf")))

    @unittest.skipUnless(support.TOKEN, "auth is off on this server (no EDGELOCK_TOKEN): nothing to refuse")
    def test_a_wrong_key_is_unauthorized(self) -> None:
        wrong = Client(support.URL, api_key="el_wrong_" + "x" * 40)
        self.assert_error("unauthorized", AuthError, lambda: wrong.acquire(unique("auth")))


if __name__ == "__main__":
    unittest.main()
