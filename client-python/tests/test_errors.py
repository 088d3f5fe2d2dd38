"""Every error code of the contract maps to its exception class with its evidence, unknown codes fall back on
the HTTP status, and answers that are not problems become clear errors. No server needed.
"""

from __future__ import annotations

import unittest

import support  # noqa: F401  (puts the package on sys.path)
from edgelock import ERROR_CODES, AuthError, EdgelockError, LeaseLost, LockHeld, ServiceError, ValidationError
from edgelock.errors import error_from_problem
from edgelock.retry import is_retryable
from edgelock.transport import RawResponse, parse_answer

# Written out here rather than read from the package, so that a code moved to another class fails a test;
# a code added to ERROR_CODES without a line here fails test_every_code_of_the_contract_is_listed.
EXPECTED = {
    LockHeld: ["lock_held", "lock_delay", "waiters_ahead", "too_many_waiters", "too_many_sessions"],
    LeaseLost: ["not_held", "lease_ended", "wait_cancelled"],
    ValidationError: [
        "limit_mismatch",
        "upgrade_not_supported",
        "reentrant_mismatch",
        "too_many_holds",
        "invalid_name",
        "invalid_body",
        "malformed_json",
        "invalid_ttl",
        "invalid_wait",
        "invalid_owner",
        "invalid_lease_id",
        "invalid_mode",
        "invalid_limit",
        "invalid_permits",
        "permits_exceed_limit",
        "invalid_reentrant",
        "holder_key_required",
        "invalid_holder_key",
        "invalid_repoll",
        "invalid_query",
        "invalid_lock_delay",
        "upgrade_required",
        "invalid_frame",
        "unsupported_media_type",
        "body_too_large",
    ],
    AuthError: ["unauthorized", "forbidden", "forbidden_scope", "auth_not_configured"],
    ServiceError: ["not_found", "method_not_allowed", "unavailable", "internal"],
}


def problem(code: str, **extra: object) -> dict:
    body = {"type": f"about:{code}", "title": code, "status": ERROR_CODES.get(code, 0), "code": code}
    return {**body, "detail": f"d-{code}", **extra}


class ErrorMappingTest(unittest.TestCase):
    def test_every_code_of_the_contract_is_listed(self) -> None:
        listed = [code for codes in EXPECTED.values() for code in codes]
        self.assertEqual(sorted(listed), sorted(ERROR_CODES))
        self.assertEqual(len(listed), len(set(listed)))

    def test_every_code_maps_to_its_class_with_code_status_and_detail(self) -> None:
        for cls, codes in EXPECTED.items():
            for code in codes:
                with self.subTest(code=code):
                    error = error_from_problem(problem(code), ERROR_CODES[code])
                    self.assertIs(type(error), cls)
                    self.assertIsInstance(error, EdgelockError)
                    self.assertEqual(
                        (error.code, error.status, error.detail), (code, ERROR_CODES[code], f"d-{code}")
                    )
                    self.assertIn(code, str(error))

    def test_only_service_errors_of_5xx_are_retried(self) -> None:
        retried = sorted(c for c, s in ERROR_CODES.items() if is_retryable(error_from_problem(problem(c), s)))
        # auth_not_configured is a 503 too, but no retry fixes a service without keys.
        self.assertEqual(retried, ["internal", "unavailable"])

    def test_a_busy_answer_carries_its_evidence(self) -> None:
        holders = [
            {"owner": f"o{i}", "token": i, "expiresAt": 1, "mode": "shared", "permits": 1, "holdCount": 1}
            for i in range(5)
        ]
        error = error_from_problem(
            problem(
                "waiters_ahead",
                retryAfterMs=1500,
                holders=holders,
                holderCount=42,
                position=3,
                leaseId="abcdefghijklmnop",
            ),
            409,
        )
        assert isinstance(error, LockHeld)
        self.assertEqual(error.retry_after, 1.5)
        self.assertEqual(error.holder, holders[0])
        self.assertEqual(error.holders, holders)
        self.assertEqual(error.holder_count, 42)
        self.assertEqual(error.position, 3)
        self.assertEqual(error.lease_id, "abcdefghijklmnop")

    def test_a_busy_answer_without_retry_after_ms_takes_the_header(self) -> None:
        error = parse_error(RawResponse(429, {"retry-after": "3"}, '{"code":"too_many_waiters"}'))
        assert isinstance(error, LockHeld)
        self.assertEqual((error.code, error.retry_after), ("too_many_waiters", 3.0))
        self.assertEqual((error.holder, error.position), (None, None))

    def test_a_lost_lease_says_why(self) -> None:
        forced = error_from_problem(problem("not_held", reason="forced", by="ops"), 409)
        assert isinstance(forced, LeaseLost)
        self.assertEqual(forced.reason, "forced")
        cancelled = error_from_problem(problem("wait_cancelled"), 409)
        assert isinstance(cancelled, LeaseLost)
        self.assertEqual(cancelled.reason, "cancelled")
        bare = error_from_problem(problem("lease_ended"), 409)
        assert isinstance(bare, LeaseLost)
        self.assertEqual(bare.reason, "unknown")

    def test_unknown_codes_fall_back_on_the_status(self) -> None:
        cases = {
            401: AuthError,
            403: AuthError,
            409: LockHeld,
            429: LockHeld,
            400: ValidationError,
            404: ValidationError,
            422: ValidationError,
            500: ServiceError,
            502: ServiceError,
            503: ServiceError,
        }
        for status, cls in cases.items():
            with self.subTest(status=status):
                error = error_from_problem({"code": "from_a_newer_server", "detail": "x"}, status)
                self.assertIs(type(error), cls)
                self.assertEqual((error.code, error.status), ("from_a_newer_server", status))

    def test_a_service_error_keeps_the_retry_after(self) -> None:
        error = parse_error(RawResponse(503, {"retry-after": "2"}, '{"code":"unavailable","title":"t"}'))
        assert isinstance(error, ServiceError)
        self.assertEqual((error.retry_after, error.detail), (2.0, "t"))
        self.assertTrue(is_retryable(error))


class NonProblemAnswerTest(unittest.TestCase):
    def test_error_answers_without_a_problem_body_map_by_status(self) -> None:
        cases = [
            (401, AuthError, "unauthorized"),
            (403, AuthError, "forbidden"),
            (404, ServiceError, "not_found"),
            (418, ServiceError, "bad_response"),
            (500, ServiceError, "internal"),
            (502, ServiceError, "internal"),
            (503, ServiceError, "unavailable"),
        ]
        for status, cls, code in cases:
            with self.subTest(status=status):
                error = parse_error(RawResponse(status, {}, "<html>proxy says no</html>"))
                self.assertIs(type(error), cls)
                self.assertEqual((error.code, error.status), (code, status))
                self.assertIn("proxy says no", error.detail)

    def test_a_2xx_answer_that_is_not_json_is_a_bad_response(self) -> None:
        error = parse_error(RawResponse(200, {}, "<html>captive portal</html>"))
        self.assertIsInstance(error, ServiceError)
        self.assertEqual(error.code, "bad_response")
        self.assertFalse(is_retryable(error))

    def test_a_2xx_json_answer_is_returned(self) -> None:
        self.assertEqual(parse_answer(RawResponse(200, {}, '{"released":true}')), {"released": True})


def parse_error(raw: RawResponse) -> EdgelockError:
    try:
        parse_answer(raw)
    except EdgelockError as error:
        return error
    raise AssertionError(f"no error for {raw}")


if __name__ == "__main__":
    unittest.main()
