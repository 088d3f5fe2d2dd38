"""The client against a real edgelock server (EDGELOCK_URL): `with`, the decorator, threads, renewal, a lost
lease, waits past one request's cap, cancelled waits, and retries after a lost answer. Faults are injected
only in the client's transport (its interceptor); the server is the real one.
"""

from __future__ import annotations

import threading
import time
import unittest
from typing import Any, Callable, List, Optional

import support
from edgelock import Cancelled, CancelToken, LeaseLost, LockHeld, RawResponse
from support import make_client, raw, raw_force_release, raw_status, unique, wait_for


def recording(log: List[dict], action: str) -> Callable[..., RawResponse]:
    """An interceptor that records the body of every request to `action`."""

    def interceptor(method: str, path: str, body: Optional[dict], send: Callable[[], RawResponse]) -> Any:
        if path.endswith("/" + action):
            log.append(dict(body or {}))
        return send()

    return interceptor


@support.needs_server
class LockTest(unittest.TestCase):
    def test_with_holds_the_lock_inside_and_frees_it_on_leaving(self) -> None:
        name = unique("with")
        locks = make_client(owner="py-test")
        with locks.lock(name, ttl=30, wait=5) as lease:
            self.assertTrue(lease.held)
            view = raw_status(name)
            self.assertEqual([h["token"] for h in view["holders"]], [lease.token])
            with self.assertRaises(LockHeld) as caught:
                make_client().acquire(name, wait=0)
            held = caught.exception
            self.assertEqual(held.code, "lock_held")
            self.assertEqual(held.holder and held.holder["owner"], "py-test")
            self.assertGreater(held.retry_after, 0)
        self.assertFalse(raw_status(name)["held"])
        self.assertFalse(lease.held)
        self.assertFalse(lease.lost.is_set())

    def test_acquire_and_release_by_hand_and_release_twice(self) -> None:
        name = unique("manual")
        locks = make_client()
        first = locks.acquire(name, ttl=60, wait=0)
        self.assertEqual(first.release()["released"], True)
        self.assertEqual(first.release()["released"], True)  # the first answer again
        second = locks.acquire(name, ttl=60, wait=0)
        self.assertEqual(second.token, first.token + 1)
        second.release()

    def test_the_watchdog_renews_past_several_ttls_and_nobody_else_gets_the_lock(self) -> None:
        name = unique("renew")
        renewals: List[dict] = []
        locks = make_client(interceptor=recording(renewals, "renew"))
        other = make_client()
        with locks.lock(name, ttl=0.6) as lease:
            # Event-driven: wait until the watchdog has renewed four times, i.e. the lease outlived 4 TTLs.
            wait_for(lambda: len(renewals) >= 4, "four renewals", timeout=20)
            with self.assertRaises(LockHeld):
                other.acquire(name, wait=0)
            self.assertTrue(lease.held)
        self.assertEqual({r["leaseId"] for r in renewals}, {lease.lease_id})
        self.assertFalse(lease.lost.is_set())
        self.assertEqual(raw_status(name)["lastToken"], lease.token)

    def test_a_force_released_lease_is_lost_and_leaving_the_with_raises(self) -> None:
        name = unique("lost")
        locks = make_client()
        with self.assertRaises(LeaseLost) as caught:
            with locks.lock(name, ttl=1) as lease:
                self.assertEqual(raw_force_release(name)["count"], 1)
                # The watchdog's next renewal (at a third of the TTL) hears not_held.
                self.assertTrue(lease.lost.wait(10), "lease.lost was not set")
                finished = True  # the body succeeds: leaving still reports the loss
        self.assertTrue(finished)
        self.assertIs(caught.exception, lease.lost_error)
        self.assertEqual((caught.exception.code, caught.exception.reason), ("not_held", "forced"))
        self.assertFalse(lease.held)

    def test_a_lease_released_behind_its_back_is_lost_with_the_servers_reason(self) -> None:
        name = unique("lost-released")
        lease = make_client().acquire(name, ttl=1, keep_alive=True)
        self.assertEqual(raw("POST", f"/v1/locks/{name}/release", {"leaseId": lease.lease_id})[0], 200)
        self.assertTrue(lease.lost.wait(10))
        assert lease.lost_error is not None
        self.assertEqual(lease.lost_error.reason, "released")
        with self.assertRaises(LeaseLost):
            lease.release()

    def test_the_decorator_runs_each_call_holding_the_lock(self) -> None:
        name = unique("decorator")
        locks = make_client()

        @locks.synchronized(name, ttl=10, wait=30)
        def settle(amount: int) -> dict:
            """Settles."""
            return {"amount": amount, "view": raw_status(name)}

        result = settle(7)
        self.assertEqual(result["amount"], 7)
        self.assertTrue(result["view"]["held"])
        self.assertFalse(raw_status(name)["held"])
        self.assertEqual((settle.__name__, settle.__doc__), ("settle", "Settles."))
        self.assertEqual(settle(8)["view"]["lastToken"], result["view"]["lastToken"] + 1)

    def test_two_threads_in_one_process_never_overlap(self) -> None:
        name = unique("threads")
        locks = make_client()  # one client, shared by both threads
        counter = {"value": 0}
        inside: List[int] = []
        tokens: List[int] = []

        def work() -> None:
            for _ in range(25):
                with locks.lock(name, ttl=10, wait=30) as lease:
                    inside.append(1)
                    self.assertEqual(len(inside), 1)
                    value = counter["value"]
                    time.sleep(0.001)  # widen the read-modify-write window
                    counter["value"] = value + 1
                    tokens.append(lease.token)
                    inside.pop()

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(counter["value"], 50)
        self.assertEqual(sorted(tokens), list(range(1, 51)))

    def test_a_wait_past_the_per_request_cap_repolls_with_the_same_lease_id_and_keeps_its_place(self) -> None:
        name = unique("repoll")
        acquires: List[dict] = []
        patient = make_client(max_wait=0.5, interceptor=recording(acquires, "acquire"))
        holder = make_client().acquire(name, ttl=30)
        outcome: dict = {}

        def wait_long() -> None:
            try:
                outcome["lease"] = patient.acquire(name, ttl=30, wait=20)
            except Exception as error:  # noqa: BLE001  (reported by the assertions below)
                outcome["error"] = error

        first = threading.Thread(target=wait_long)
        first.start()
        wait_for(lambda: len(acquires) >= 3, "the patient waiter to re-poll twice")
        # A later waiter queues behind; the re-polls must not send the first one to the back of the queue.
        later: dict = {}
        second = threading.Thread(
            target=lambda: later.update(lease=make_client().acquire(name, ttl=30, wait=20))
        )
        second.start()
        wait_for(lambda: raw_status(name)["waiters"] == 2, "both waiters to be queued")
        polls = len(acquires)
        wait_for(lambda: len(acquires) >= polls + 2, "re-polls while the later waiter is queued")
        holder.release()
        first.join(30)
        self.assertNotIn("error", outcome)
        lease = outcome["lease"]
        self.assertEqual(lease.token, holder.token + 1)  # granted before the later waiter
        lease.release()
        second.join(30)
        self.assertEqual(later["lease"].token, lease.token + 1)
        later["lease"].release()
        self.assertEqual({body["leaseId"] for body in acquires}, {lease.lease_id})
        self.assertTrue(all(body["waitMs"] <= 500 for body in acquires))
        # repoll: true on every request but the last (the wait had time left after each).
        self.assertTrue(all(body.get("repoll") is True for body in acquires[:-1]), acquires)

    def test_a_short_wait_sends_no_repoll_and_gives_up_with_lock_held(self) -> None:
        name = unique("no-repoll")
        acquires: List[dict] = []
        holder = make_client().acquire(name, ttl=30)
        with self.assertRaises(LockHeld):
            make_client(interceptor=recording(acquires, "acquire")).acquire(name, wait=0.3)
        # One request's cap covers the whole wait: no request promises a re-poll.
        self.assertGreaterEqual(len(acquires), 1)
        self.assertEqual([body for body in acquires if "repoll" in body], [])
        self.assertEqual(raw_status(name)["waiters"], 0)  # the given-up wait was released
        holder.release()

    def test_a_cancelled_wait_leaves_the_queue_so_a_later_acquirer_is_not_held_up(self) -> None:
        name = unique("cancel")
        locks = make_client()
        holder = locks.acquire(name, ttl=30)
        token = CancelToken()
        outcome: dict = {}

        def wait() -> None:
            try:
                locks.acquire(name, ttl=30, wait=20, cancel=token)
            except Exception as error:  # noqa: BLE001
                outcome["error"] = error

        thread = threading.Thread(target=wait)
        thread.start()
        wait_for(lambda: raw_status(name)["waiters"] == 1, "the waiter to queue")
        token.cancel()
        thread.join(10)
        self.assertFalse(thread.is_alive(), "cancel did not interrupt the wait")
        self.assertIsInstance(outcome.get("error"), Cancelled)
        self.assertEqual(raw_status(name)["waiters"], 0)
        holder.release()
        later = locks.acquire(name, ttl=30, wait=0)  # FIFO would refuse this if the waiter were still queued
        self.assertEqual(later.token, holder.token + 1)
        later.release()

    def test_a_lost_acquire_answer_is_retried_with_the_same_lease_id_and_yields_the_one_grant(self) -> None:
        name = unique("retry")
        sent: List[dict] = []

        def drop_first_answer(method: str, path: str, body: Any, send: Callable[[], RawResponse]) -> Any:
            answer = send()
            if path.endswith("/acquire"):
                sent.append(body)
                if len(sent) == 1:
                    raise ConnectionResetError("connection reset after the server answered")
            return answer

        lease = make_client(interceptor=drop_first_answer).acquire(name, ttl=30)
        self.assertEqual(len(sent), 2)
        self.assertEqual(sent[0]["leaseId"], sent[1]["leaseId"])
        view = raw_status(name)
        self.assertEqual((view["lastToken"], [h["token"] for h in view["holders"]]), (1, [1]))
        self.assertEqual(lease.token, 1)
        lease.release()

    def test_renewals_that_keep_failing_lose_the_lease_at_its_deadline(self) -> None:
        name = unique("renew-fails")

        def no_renewals(method: str, path: str, body: Any, send: Callable[[], RawResponse]) -> RawResponse:
            if path.endswith("/renew"):
                raise ConnectionRefusedError("renewals are cut off")
            return send()

        with self.assertRaises(LeaseLost) as caught:
            with make_client(interceptor=no_renewals).lock(name, ttl=0.5) as lease:
                self.assertTrue(lease.lost.wait(10))
        self.assertEqual((caught.exception.code, caught.exception.reason), ("lease_expired", "expired"))

    def test_the_callers_deadline_gives_the_lease_up_before_it(self) -> None:
        name = unique("deadline")
        deadline = time.time() + 1.0
        with self.assertRaises(LeaseLost) as caught:
            with make_client().lock(name, ttl=10, deadline=deadline) as lease:
                self.assertTrue(lease.lost.wait(10))
                self.assertLess(time.time(), deadline)
        self.assertEqual(caught.exception.code, "deadline")
        self.assertFalse(raw_status(name)["held"])  # released on leaving


if __name__ == "__main__":
    unittest.main()
