"""Pure parts of the client, no server needed: durations, the lease deadline arithmetic, the renewal point,
the grant check, backoff bounds, cancellation, and argument checks made before any request.
"""

from __future__ import annotations

import threading
import unittest
from datetime import timedelta

import support  # noqa: F401  (puts the package on sys.path)
from edgelock import Cancelled, Client, RetryPolicy, ValidationError, format_ms, lease_deadline, to_ms
from edgelock.client import _grant_mismatch
from edgelock.lease import is_wire_lease
from edgelock.retry import CancelToken, backoff_delay


class DurationTest(unittest.TestCase):
    def test_numbers_are_seconds_and_round_up_to_whole_milliseconds(self) -> None:
        cases = [(0, 0), (30, 30_000), (1.5, 1_500), (0.1, 100), (0.0001, 1), (2.0005, 2_001)]
        for value, ms in cases:
            with self.subTest(value=value):
                self.assertEqual(to_ms(value), ms)

    def test_timedeltas_and_strings_with_a_unit(self) -> None:
        self.assertEqual(to_ms(timedelta(minutes=2)), 120_000)
        self.assertEqual(to_ms(timedelta(milliseconds=250)), 250)
        cases = {"250ms": 250, "1.5s": 1_500, "30s": 30_000, "5m": 300_000, "2h": 7_200_000, " 10 s ": 10_000}
        for text, ms in cases.items():
            with self.subTest(text=text):
                self.assertEqual(to_ms(text), ms)

    def test_refuses_what_is_not_a_duration(self) -> None:
        bad = [-1, float("nan"), float("inf"), "30", "1d", "", "-5s", True, None, [1], timedelta(seconds=-1)]
        for value in bad:
            with self.subTest(value=value):
                with self.assertRaises(ValidationError) as caught:
                    to_ms(value, "ttl")  # type: ignore[arg-type]
                self.assertEqual(caught.exception.code, "invalid_argument")
                self.assertIn("ttl", caught.exception.detail)

    def test_formats_for_messages(self) -> None:
        formatted = [format_ms(ms) for ms in (250, 1_500, 60_000, 90_000)]
        self.assertEqual(formatted, ["250ms", "1.5s", "1m", "1m30s"])


class DeadlineTest(unittest.TestCase):
    def test_counts_valid_for_from_the_send_time_less_the_drift_margin(self) -> None:
        # 30 s lease: margin = ceil(1 % of 30 000) + 10 = 310 ms.
        self.assertAlmostEqual(lease_deadline(1_000.0, 30_000), 1_000.0 + 29.69)
        # 100 ms lease: margin = 1 + 10 ms.
        self.assertAlmostEqual(lease_deadline(5.0, 100), 5.0 + 0.089)

    def test_a_waited_grant_is_valid_longer_and_a_collected_one_shorter_than_its_ttl(self) -> None:
        # validForMs > ttlMs after waiting in the queue; < ttlMs when a retry collects an earlier grant.
        self.assertGreater(lease_deadline(0.0, 12_000), lease_deadline(0.0, 10_000))
        self.assertLess(lease_deadline(0.0, 4_000), lease_deadline(0.0, 10_000))

    def test_a_lease_answer_is_checked_for_the_fields_the_client_relies_on(self) -> None:
        wire = {"name": "a", "leaseId": "x" * 16, "owner": None, "token": 3, "ttlMs": 1000, "expiresAt": 1,
                "validForMs": 1000, "mode": "exclusive", "permits": 1, "holdCount": 1, "limit": 1}
        self.assertTrue(is_wire_lease(wire))
        broken = [("token", "3"), ("mode", "both"), ("validForMs", None), ("owner", 5), ("holdCount", True)]
        for key, bad in broken:
            with self.subTest(key=key):
                self.assertFalse(is_wire_lease({**wire, key: bad}))


class GrantCheckTest(unittest.TestCase):
    wire = {"mode": "shared", "permits": 1, "limit": 1}

    def test_a_grant_must_have_the_mode_and_permits_asked_for(self) -> None:
        self.assertIsNone(_grant_mismatch(self.wire, "shared", 1, None))
        self.assertIn("asked for a exclusive lease", _grant_mismatch(self.wire, "exclusive", 1, None) or "")
        self.assertIsNotNone(_grant_mismatch({**self.wire, "permits": 2, "limit": 4}, "exclusive", 1, 4))
        other_limit = {"mode": "exclusive", "permits": 1, "limit": 3}
        self.assertIsNotNone(_grant_mismatch(other_limit, "exclusive", 1, 4))


class RetryTest(unittest.TestCase):
    def test_backoff_is_jittered_below_a_doubling_ceiling_and_honours_retry_after(self) -> None:
        policy = RetryPolicy(retries=4, min_delay=0.1, max_delay=2.0)
        for attempt, ceiling in [(0, 0.1), (1, 0.2), (3, 0.8), (10, 2.0)]:
            delays = [backoff_delay(attempt, policy) for _ in range(200)]
            self.assertTrue(all(0 <= d <= ceiling for d in delays), attempt)
        self.assertGreaterEqual(backoff_delay(0, policy, retry_after=1.0), 1.0)
        self.assertLessEqual(backoff_delay(0, policy, retry_after=60.0), 2.0)

    def test_a_cancel_token_wakes_a_sleeper_and_runs_callbacks_once(self) -> None:
        token = CancelToken()
        calls: list = []
        unregister = token.on_cancel(lambda: calls.append("a"))
        token.on_cancel(lambda: calls.append("b"))
        unregister()
        threading.Timer(0.05, token.cancel).start()
        self.assertTrue(token.sleep(30))  # returns when cancelled, not after 30 s
        token.cancel()
        self.assertEqual(calls, ["b"])
        token.on_cancel(lambda: calls.append("late"))  # already cancelled: runs at once
        self.assertEqual(calls, ["b", "late"])
        self.assertFalse(CancelToken().sleep(0))


class ArgumentTest(unittest.TestCase):
    # No server at this address: each of these must be refused before a request is sent.
    client = Client("http://127.0.0.1:9")

    def test_refuses_bad_names_and_durations_before_sending(self) -> None:
        for call in [
            lambda: self.client.acquire("has space"),
            lambda: self.client.acquire("trailing-newline\n"),  # `$` alone would let it through
            lambda: self.client.lock(""),
            lambda: self.client.acquire("ok", ttl="30"),
            lambda: self.client.acquire("ok", wait=-1),
            lambda: Client("ftp://example.com"),
            lambda: Client("http://127.0.0.1:9", max_wait=26),
            lambda: Client("http://127.0.0.1:9", max_wait=0),
        ]:
            with self.assertRaises(ValidationError):
                call()

    def test_holder_keys_are_secret_per_client_and_per_thread(self) -> None:
        other = Client("http://127.0.0.1:9")
        key = self.client.holder_key()
        self.assertRegex(key, r"^[A-Za-z0-9_-]{16,128}$")
        self.assertEqual(self.client.holder_key(), key)
        self.assertNotEqual(other.holder_key(), key)
        seen: list = []
        thread = threading.Thread(target=lambda: seen.append(self.client.holder_key()))
        thread.start()
        thread.join()
        self.assertNotEqual(seen, [key])
        self.assertEqual(Client("http://127.0.0.1:9", holder_key="k" * 20).holder_key(), "k" * 20)

    def test_a_cancelled_token_refuses_at_once(self) -> None:
        token = CancelToken()
        token.cancel()
        with self.assertRaises(Cancelled):  # not a network_error: nothing was sent to the closed port
            self.client.acquire("ok", wait=30, cancel=token)


if __name__ == "__main__":
    unittest.main()
