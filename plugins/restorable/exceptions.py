"""One exception hierarchy for the whole project.

Every error says what failed, on which database and backup, and what to do next; the CLI
maps each kind to its own exit code so scripts can tell a bad config from a bad backup.
"""

from __future__ import annotations

from typing import Any


class RestorableError(Exception):
    """Base of every error Restorable raises on purpose."""

    exit_code = 1
    #: Retrying cannot fix this kind (the Airflow layer fails the task at once).
    permanent = False

    def __init__(
        self,
        message: str,
        *,
        database: str | None = None,
        backup_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.database = database
        self.backup_id = backup_id
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in (("database", self.database), ("backup", self.backup_id)) if v)
        text = f"{self.message} ({where})" if where else self.message
        return f"{text}. {self.hint}" if self.hint else text


class ConfigError(RestorableError):
    """The config file or a connection is malformed: fix the named field."""

    exit_code = 2
    permanent = True


class SourceUnreachable(RestorableError):
    """The source database could not be reached or refused us."""

    exit_code = 3


class AuthenticationFailed(SourceUnreachable):
    """Credentials were refused: retrying with the same ones cannot help."""

    permanent = True


class ToolError(RestorableError):
    """An external program (pg_dump, mariadb-dump, ...) is missing, too old, or failed."""

    exit_code = 4


class StorageError(RestorableError):
    """Object storage failed (after retries) or refused an operation."""

    exit_code = 5


class KeyServiceError(StorageError):
    """The KMS (OpenBao/Vault transit) refused a wrap or unwrap, or could not be reached."""


class WalArchiverUnhealthy(StorageError):
    """The WAL archiver is stopped, stale or its spool is full: WAL is not reaching the bucket.

    Not permanent: starting the archiver fixes it, and the task's retries give it that time.
    """


class ObjectiveBreached(RestorableError):
    """A WAL monitor objective is not met (RPO, queue, continuity, ...): the run fails while it stays open.

    Permanent (a retry minutes later measures the same thing); ``alerted`` says the breach alert was
    already sent (or was not due: the breach was alerted when it opened), so no failure alert follows.
    """

    exit_code = 9
    permanent = True

    def __init__(self, message: str, *, alerted: bool = True, **kw: Any) -> None:
        self.alerted = alerted
        super().__init__(message, **kw)


class IntegrityError(RestorableError):
    """What was read back does not match what was recorded (checksum, decryption, counts)."""

    exit_code = 6
    permanent = True


class DecryptionError(IntegrityError):
    """The backup could not be decrypted with the identity given."""


class RestoreRefused(RestorableError):
    """A restore would overwrite something it was not told to overwrite."""

    exit_code = 7
    permanent = True

    @classmethod
    def not_empty(
        cls, database: str, where: str, *, held: str | None = None, database_id: str | None = None, **kw: Any
    ) -> RestoreRefused:
        """The one wording of "the target holds data and overwrite was not asked for"."""
        holds = f" (it holds {held})" if held else ""
        return cls(
            f"database {database!r} on {where} is not empty{holds}; refusing to overwrite it",
            database=database_id or database,
            hint="Restore into a new database name, or pass --overwrite (overwrite=true) to replace it",
            **kw,
        )


class ValidationFailed(IntegrityError):
    """The restored database differs from the manifest."""

    def __init__(self, message: str, *, differences: list[str] | None = None, **kw) -> None:
        self.differences = list(differences or [])
        super().__init__(message, **kw)


class NotFound(RestorableError):
    """A backup, manifest or database asked for does not exist."""

    exit_code = 8
    permanent = True


class Interrupted(KeyboardInterrupt):
    """A signal stopped the command: SIGTERM (Airflow stopping a task, ``kill``, a timeout) or
    SIGINT (Ctrl-C). Raised in the main thread so that every clean-up path runs (children
    stopped, upload aborted, a database the restore created dropped, temporary files removed).

    A ``KeyboardInterrupt``, not a ``RestorableError``: ``except Exception`` blocks (retries,
    error wrapping) must let it through. Exit code: 128 + the signal's number, as a shell
    reports a process that a signal ended: 130 for SIGINT, 143 for SIGTERM.
    """

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {self.signal_name}")
