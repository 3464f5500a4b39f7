"""Retry what retrying can fix; fail at once what it cannot.

Every ``RestorableError`` says whether it is ``permanent`` (a checksum mismatch, a bad config,
refused credentials, a refused restore, a failed validation). Retrying those only delays the
alert, so the policy fails the task on the first try; anything else follows the task's
``retries`` with exponential backoff.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy


def is_permanent(exception: BaseException) -> bool:
    from restorable.exceptions import RestorableError

    return isinstance(exception, RestorableError) and bool(exception.permanent)


class PermanentErrorRetryPolicy(RetryPolicy):
    """FAIL for permanent ``RestorableError``s, the task's default retry logic otherwise."""

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int, context: Any = None):
        if is_permanent(exception):
            return RetryDecision.fail(reason=f"{type(exception).__name__} is permanent: retrying cannot fix it")
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        return {"__type": "PermanentErrorRetryPolicy"}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> PermanentErrorRetryPolicy:
        return cls()


RETRY_POLICY = PermanentErrorRetryPolicy()
