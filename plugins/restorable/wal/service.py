"""``restorable wal-archiver DB``: the long-running service that empties the spool into the bucket.

One process per database, started by systemd or compose (not by Airflow: a scheduler restart must
not leave a gap). It pays its imports once, then loops: scan the spool, upload the oldest files
(``upload_concurrency`` in flight), remove each spool file once its object has been read back,
and write a state file for ``wal-status``. A failed upload is retried with backoff, the others go
on; the bucket being down therefore grows the spool, which drains in WAL order once it is back.

Alarms (logged at ERROR, listed in the state file): the same name archived with different content
(the spool file stays and is never uploaded over it), the spool above ``spool_alarm_bytes``, the
spool at ``spool_max_bytes`` (PostgreSQL's archive step then refuses new files), a heartbeat that
fails. SIGTERM or SIGINT: no new upload starts, the ones in flight finish (their spool files are
removed as usual), the state is written, the command exits 143 (130). SIGKILL: the next start
finds the same spool; a file whose object was already written is recognised by its sha256.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from restorable.exceptions import (
    AuthenticationFailed,
    ConfigError,
    RestorableError,
    SourceUnreachable,
    StorageError,
)
from restorable.repository.layout import Layout
from restorable.services import Services
from restorable.storage.protocol import Store
from restorable.wal.heartbeat import Heartbeat
from restorable.wal.names import kind_of
from restorable.wal.spool import Spool
from restorable.wal.state import write_state
from restorable.wal.uploader import ALREADY, ARCHIVED, CONFLICT, UploadOutcome, UploadSettings, upload_wal_file

log = logging.getLogger(__name__)

LOCK_FILE = ".restorable-wal-archiver.lock"
_BACKOFF_FIRST = 0.5
_BACKOFF_CAP = 5.0
_STATE_EVERY = 1.0


def _lag_figures(lags: deque[float]) -> dict[str, Any] | None:
    if not lags:
        return None
    ordered = sorted(lags)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"last": round(lags[-1], 3), "p50": pick(0.5), "p99": pick(0.99), "samples": len(ordered)}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class WalArchiver:
    """The archive loop of one database (``run()`` blocks until stopped)."""

    def __init__(
        self,
        services: Services,
        database_id: str,
        *,
        store: Store | None = None,
        poll_interval: float = 0.2,
        heartbeat: bool = True,
    ) -> None:
        config = services.config
        db = config.database(database_id)
        if db.physical is None:
            raise ConfigError(
                f"{config.path}: database {database_id!r} has no physical block, so no WAL to archive",
                hint="Add physical: {wal: {mode: archive, spool_dir: /var/lib/restorable/spool/<db>}} to its entry",
            )
        if not db.physical.enabled:
            raise ConfigError(
                f"{config.path}: database {database_id!r} has physical.enabled: false",
                hint="Set it to true to archive its WAL (or stop this service)",
            )
        self.database_id = database_id
        self.wal = db.physical.wal
        self.spool = Spool(self.wal.spool_dir)
        self.store = store if store is not None else services.store("backup")
        self.layout = Layout(config.storage.prefix)
        lock = config.object_lock_for(database_id)
        self.settings = UploadSettings(
            database_id,
            tuple(config.encryption.recipients),
            db.compression.level,
            lock[0] if lock else None,
            lock[1] if lock else None,
        )
        self.poll_interval = poll_interval
        self.heartbeat: Heartbeat | None = None
        if heartbeat:
            from restorable.engines.postgres.engine import PostgresEngine

            source = services.resolve(db.conn_id)
            self.heartbeat = Heartbeat(source, PostgresEngine.database_of(source), self.wal.heartbeat_interval)
        self.streamer = None
        if self.wal.mode == "stream":
            from restorable.wal.streamer import Streamer

            replication = services.resolve(db.physical.replication_conn_id)
            self.streamer = Streamer(replication, self.wal.slot or f"restorable_{database_id}", self.wal.spool_dir)
        #: Stream mode: name -> (mtime, monotonic time) of the .partial last uploaded.
        self._partials: dict[str, tuple[float, float]] = {}
        self._in_flight: dict[str, Future[UploadOutcome]] = {}
        self._not_before: dict[str, float] = {}
        self._attempts: dict[str, int] = {}
        #: name -> (size, mtime) of a spool file that conflicts with the archive: skipped while unchanged.
        self._conflicts: dict[str, tuple[int, float]] = {}
        self.alarms: dict[str, dict[str, Any]] = {}
        self.counts = {ARCHIVED: 0, ALREADY: 0, CONFLICT: 0, "failed_attempts": 0}
        self.last_archived: dict[str, Any] | None = None
        self.last_segment: str | None = None
        self.last_heartbeat_archived: dict[str, Any] | None = None
        self.started_at = _now()
        self.queue: dict[str, Any] = {"files": 0, "bytes": 0, "oldest": None}
        self._state_written = 0.0
        self._lock_fd: int | None = None
        self.server_settings: dict[str, str | None] = {}
        #: Seconds from a file landing in the spool (its mtime) to its object read back, recent files.
        self._lags: deque[float] = deque(maxlen=500)

    # -- alarms ------------------------------------------------------------------------------
    def _raise_alarm(self, name: str, kind: str, message: str) -> None:
        if name not in self.alarms or self.alarms[name]["message"] != message:
            log.error("wal alarm database=%s kind=%s %s", self.database_id, kind, message)
            self.alarms[name] = {"kind": kind, "message": message, "since": _now()}

    def _clear_alarm(self, name: str) -> None:
        if self.alarms.pop(name, None) is not None:
            log.info("wal alarm cleared database=%s alarm=%s", self.database_id, name)

    # -- the loop ----------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> None:
        """Archive until ``stop`` is set or a signal raises ``Interrupted`` (then finish what is in flight)."""
        self._open_spool()
        if self.heartbeat is not None:
            try:
                self.heartbeat.prepare()
                self._check_server_settings()
            except SourceUnreachable as exc:
                if isinstance(exc, AuthenticationFailed):
                    raise
                # The spool must drain even while the database is down (WAL is already there).
                self.heartbeat.last_error = str(exc)
                log.error(
                    "heartbeat not started database=%s error=%s: the spool is archived anyway", self.database_id, exc
                )
            self.heartbeat.start()
        if self.streamer is not None:
            self.streamer.create_slot()
            self.streamer.start()
        log.info(
            "wal archiver started database=%s spool=%s concurrency=%d heartbeat=%ss",
            self.database_id,
            self.spool.directory,
            self.wal.upload_concurrency,
            self.wal.heartbeat_interval if self.heartbeat else "off",
        )
        pool = ThreadPoolExecutor(self.wal.upload_concurrency, thread_name_prefix="wal-upload")
        try:
            while stop is None or not stop.is_set():
                self.tick(pool)
                time.sleep(self.poll_interval)
        finally:
            if self.streamer is not None:
                self.streamer.stop()  # first: pg_receivewal flushes its .partial as it exits
            in_flight = len(self._in_flight)
            if in_flight:
                log.info("wal archiver stopping database=%s: finishing %d upload(s)", self.database_id, in_flight)
            pool.shutdown(wait=True, cancel_futures=True)
            self._collect(wait=True)
            if self.heartbeat is not None:
                self.heartbeat.stop()
            self._write_state(running=False)
            log.info("wal archiver stopped database=%s archived=%d", self.database_id, self.counts[ARCHIVED])

    def _open_spool(self) -> None:
        directory = self.spool.directory
        if not directory.is_dir():
            raise ConfigError(
                f"WAL spool directory {directory} does not exist",
                hint="Create it, writable by the postgres user (archive_command) and by the archiver",
            )
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ConfigError(f"WAL spool directory {directory} is not writable by this user")
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RestorableError(
                f"another wal-archiver is already running on {directory}",
                hint="Run one archiver per database; stop the other first",
            ) from None
        self._lock_fd = fd

    def _check_server_settings(self) -> None:
        """An alarm when the server does not archive into this spool (see ``preflight``)."""
        from restorable.wal.preflight import archive_problems, read_settings

        assert self.heartbeat is not None and self.heartbeat.connection is not None
        self.server_settings = read_settings(self.heartbeat.connection)
        problems = archive_problems(self.server_settings, self.wal)
        if problems:
            self._raise_alarm("server_settings", "server_settings", "; ".join(problems))

    def tick(self, pool: ThreadPoolExecutor) -> None:
        """One pass: collect finished uploads, look at the spool, start uploads, write the state."""
        self._collect(wait=False)
        self.spool.sweep_stale_temporaries()
        # Archive mode sees a .partial too: PostgreSQL archives the old timeline's last segment so at a promotion.
        files = self.spool.files(include_partial=True)
        self._check_spool_size(files)
        self._forget_removed({f.name for f in files})
        now = time.monotonic()
        for f in files:
            if len(self._in_flight) >= self.wal.upload_concurrency:
                break
            if f.name in self._in_flight or self._not_before.get(f.name, 0) > now:
                continue
            if self._conflicts.get(f.name) == (f.size, f.mtime):
                continue
            if self.wal.mode == "stream" and kind_of(f.name) == "partial" and not self._partial_due(f, now):
                continue
            self._in_flight[f.name] = pool.submit(upload_wal_file, self.store, self.layout, self.settings, f.path)
        self._note_heartbeats()
        if time.monotonic() - self._state_written >= _STATE_EVERY:
            self._write_state(running=True)

    def _partial_due(self, f: Any, now: float) -> bool:
        """pg_receivewal's .partial: uploaded again only when it changed, every partial_interval s."""
        last = self._partials.get(f.name)
        return last is None or (last[0] != f.mtime and now - last[1] >= self.wal.partial_interval)

    def _forget_removed(self, spooled: set[str]) -> None:
        """A file alarm ends when its file left the spool (an operator removed the impostor)."""
        for name in [n for n in self._conflicts if n not in spooled]:
            del self._conflicts[name]
        for alarm in [a for a in self.alarms if a.startswith("file:") and a[5:] not in spooled]:
            if alarm[5:] not in self._in_flight:
                self._clear_alarm(alarm)

    def _check_spool_size(self, files: list) -> None:
        used = self.spool.total_bytes()
        oldest = files[0] if files else None
        self.queue = {
            "files": len(files),
            "bytes": sum(f.size for f in files),
            "spool_bytes": used,
            "oldest": {
                "name": oldest.name,
                "age_seconds": round(max(0.0, time.time() - oldest.mtime), 1),
            }
            if oldest
            else None,
        }
        if used >= self.wal.spool_max_bytes:
            self._raise_alarm(
                "spool_full",
                "spool_full",
                f"spool {self.spool.directory} holds {used} bytes, its bound is {self.wal.spool_max_bytes}: "
                "the archive step now refuses new WAL, which stays in pg_wal",
            )
        else:
            self._clear_alarm("spool_full")
        if used > self.wal.spool_alarm_bytes:
            self._raise_alarm(
                "spool_alarm",
                "spool_alarm",
                f"spool {self.spool.directory} holds {used} bytes (alarm above {self.wal.spool_alarm_bytes}): "
                "uploads are not keeping up or the bucket is unreachable",
            )
        else:
            self._clear_alarm("spool_alarm")

    def _collect(self, *, wait: bool) -> None:
        for name, future in list(self._in_flight.items()):
            if not wait and not future.done():
                continue
            del self._in_flight[name]
            if future.cancelled():
                continue
            try:
                outcome = future.result()
            except (StorageError, OSError) as exc:
                self._retry_later(name, exc)
                continue
            except RestorableError as exc:  # an IntegrityError: keep the file, say so, retry slowly
                self._raise_alarm(f"file:{name}", "integrity", f"{name}: {exc}")
                self._retry_later(name, exc, cap=60.0)
                continue
            self._finish(outcome)

    def _retry_later(self, name: str, exc: BaseException, cap: float = _BACKOFF_CAP) -> None:
        attempt = self._attempts.get(name, 0) + 1
        self._attempts[name] = attempt
        self.counts["failed_attempts"] += 1
        delay = min(cap, _BACKOFF_FIRST * 2 ** (attempt - 1))
        self._not_before[name] = time.monotonic() + delay
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning(
            "wal upload failed database=%s file=%s attempt=%d retry_in=%.1fs error=%s",
            self.database_id,
            name,
            attempt,
            delay,
            text,
        )

    def _finish(self, outcome: UploadOutcome) -> None:
        name = outcome.name
        self._attempts.pop(name, None)
        self._not_before.pop(name, None)
        if outcome.status == CONFLICT:
            self.counts[CONFLICT] += 1
            path = self.spool.directory / name
            try:
                st = path.stat()
                self._conflicts[name] = (st.st_size, st.st_mtime)
            except FileNotFoundError:
                pass
            self._raise_alarm(
                f"file:{name}",
                "conflict",
                f"{name} is already archived at {outcome.key} with sha256 {outcome.found_sha256}, "
                f"the spool file has {outcome.plain_sha256}: not overwritten, the spool file is kept",
            )
            return
        # pg_receivewal keeps writing its .partial (stream mode); one archived by PostgreSQL is final.
        if kind_of(name) != "partial" or self.wal.mode == "archive":
            if not self.spool.remove(name, uploaded_mtime=outcome.source_mtime, uploaded_size=outcome.plain_size):
                log.warning(
                    "wal spool file changed while it was uploaded database=%s file=%s: kept, looked at again",
                    self.database_id,
                    name,
                )
        else:
            self._partials[name] = (outcome.source_mtime or 0.0, time.monotonic())
            if self.heartbeat is not None and outcome.source_mtime:
                beat = self.heartbeat.archived_in_partial(name.removesuffix(".partial"), outcome.source_mtime)
                if beat is not None:
                    self.last_heartbeat_archived = {"at": beat.at.isoformat(), "wal_file": beat.wal_file}
        if self.streamer is not None and kind_of(name) == "segment":
            self._drop_superseded_partial(name)
        self._clear_alarm(f"file:{name}")
        self._conflicts.pop(name, None)
        self.counts[outcome.status] += 1
        log.info(
            "wal %s database=%s file=%s plain_bytes=%d stored_bytes=%d seconds=%.3f",
            outcome.status,
            self.database_id,
            name,
            outcome.plain_size,
            outcome.stored_size,
            outcome.seconds,
        )
        self.last_archived = {"name": name, "at": _now(), "status": outcome.status, "key": outcome.key}
        if outcome.status == ARCHIVED and outcome.source_mtime and kind_of(name) != "partial":
            self._lags.append(max(0.0, time.time() - outcome.source_mtime))
        if kind_of(name) == "segment" and (self.last_segment is None or name > self.last_segment):
            self.last_segment = name

    def _drop_superseded_partial(self, segment: str) -> None:
        """The complete segment supersedes its .partial object: remove it (best effort)."""
        self._partials.pop(segment + ".partial", None)
        key = self.layout.wal_key(self.database_id, segment + ".partial")
        try:
            if self.store.exists(key):
                self.store.delete_object(key)
        except StorageError as exc:
            log.warning("superseded partial not removed key=%s error=%s", key, exc)

    def _note_heartbeats(self) -> None:
        if self.heartbeat is None:
            return
        if self.heartbeat.last_error:
            self._raise_alarm("heartbeat", "heartbeat", f"heartbeat failed: {self.heartbeat.last_error}")
        else:
            self._clear_alarm("heartbeat")
        if self.last_segment is None:
            return
        beat = self.heartbeat.archived_through(self.last_segment)
        if beat is not None:
            self.last_heartbeat_archived = {"at": beat.at.isoformat(), "wal_file": beat.wal_file}

    def state(self, *, running: bool) -> dict[str, Any]:
        hb = self.heartbeat
        return {
            "format": "restorable.wal-state/1",
            "database_id": self.database_id,
            "mode": self.wal.mode,
            "pid": os.getpid(),
            "running": running,
            "started_at": self.started_at,
            "updated_at": _now(),
            "last_archived": self.last_archived,
            "last_archived_segment": self.last_segment,
            "queue": self.queue,
            "in_flight": sorted(self._in_flight),
            "counts": dict(self.counts),
            "alarms": [{"name": k, **v} for k, v in sorted(self.alarms.items())],
            "last_heartbeat_committed": (
                {"at": hb.last_committed.at.isoformat(), "wal_file": hb.last_committed.wal_file}
                if hb is not None and hb.last_committed
                else None
            ),
            "last_heartbeat_archived": self.last_heartbeat_archived,
            "segment_size": hb.segment_size if hb is not None else None,
            "server_settings": self.server_settings,
            "archive_lag_seconds": _lag_figures(self._lags),
            "streamer": {
                "slot": self.streamer.slot,
                "pid": self.streamer.pid,
                "starts": self.streamer.starts,
                "last_exit": self.streamer.last_exit,
            }
            if self.streamer is not None
            else None,
        }

    def _write_state(self, *, running: bool) -> None:
        try:
            write_state(self.spool.state_path, self.state(running=running))
        except OSError as exc:
            log.warning("wal state file not written path=%s error=%s", self.spool.state_path, exc)
        self._state_written = time.monotonic()
