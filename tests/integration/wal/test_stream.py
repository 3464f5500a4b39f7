"""Stream mode: the archiver supervises pg_receivewal on a slot, uploads complete segments and the
growing ``.partial``; wal-fetch serves the ``.partial`` of the newest segment; a killed
pg_receivewal is started again. Budget: ~15 s.
"""

from __future__ import annotations

import os
import signal
import uuid

import pytest

from devstack.postgres import PostgresServer
from devstack.wal import make_wal_chain, read_state, stop_archiver, switch_segment, wait_for
from restorable.repository.layout import Layout

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def streaming_pg(tmp_path_factory):
    from tests.conftest import _reap_if_killed

    server = PostgresServer(tmp_path_factory.mktemp("streampg"), name="pg_stream")
    try:
        server.start()
        _reap_if_killed(server, server.base_dir, sig=signal.SIGQUIT)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chain(tmp_path_factory, streaming_pg, seaweed):
    bucket = f"t-walstream-{uuid.uuid4().hex[:8]}"
    seaweed.create_bucket(bucket, object_lock=True, versioning=True)
    spool = tmp_path_factory.mktemp("streamspool")
    yield make_wal_chain(
        tmp_path_factory.mktemp("streamchain"),
        source=streaming_pg.connection("postgres"),
        s3=seaweed.connection(),
        bucket=bucket,
        spool_dir=spool,
        mode="stream",
        partial_interval=1,
    )
    try:
        seaweed.delete_bucket(bucket)
    except Exception:
        pass


def test_stream_mode_uploads_the_partial_then_the_segment_and_restarts_pg_receivewal(chain, streaming_pg, tmp_path):
    store, layout = chain.services.store("backup"), Layout("restorable")
    proc = chain.start_archiver(tmp_path / "archiver.log")
    try:
        wait_for(lambda: (read_state(chain).get("streamer") or {}).get("pid"), 20, "pg_receivewal running")
        assert streaming_pg.query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'restorable_shop'")[0][0]
        with streaming_pg.connect("postgres") as pg:
            pg.execute("CREATE TABLE marks (n int)")
            pg.execute("INSERT INTO marks VALUES (42)")
            segment, offset = pg.execute(
                "SELECT file_name, file_offset FROM pg_walfile_name_offset(pg_current_wal_lsn())"
            ).fetchone()
        partial_key = layout.wal_key("shop", segment + ".partial")
        # Within partial_interval the growing .partial holds the commit; a fetch falls back to it.
        dest = tmp_path / "RECOVERYXLOG"

        def fetched_through_commit():
            done = chain.run_cli("wal-fetch", "shop", segment, str(dest), "--prefetch", "0")
            if done.returncode != 0:
                return None
            served = dest.read_bytes()
            return served[:offset] == (streaming_pg.data_dir / "pg_wal" / segment).read_bytes()[:offset]

        assert wait_for(lambda: store.exists(partial_key), 15, "the .partial object")
        assert wait_for(fetched_through_commit, 20, "a fetched .partial that holds the commit")
        # A heartbeat counts as archived once a .partial written after it is uploaded: RPO of seconds.
        beat = wait_for(lambda: read_state(chain).get("last_heartbeat_archived"), 15, "an archived heartbeat")
        assert beat["wal_file"] == segment

        # The segment completes: it is archived whole and supersedes its .partial.
        switched = switch_segment(streaming_pg)
        assert switched == segment
        wait_for(lambda: store.exists(layout.wal_key("shop", segment)), 20, "the complete segment")
        wait_for(lambda: not store.exists(partial_key), 10, "the superseded .partial removed")
        done = chain.run_cli("wal-fetch", "shop", segment, str(dest), "--prefetch", "0")
        assert done.returncode == 0, done.stderr
        assert dest.read_bytes() == (streaming_pg.data_dir / "pg_wal" / segment).read_bytes()

        # pg_receivewal killed: the archiver starts it again and streaming goes on.
        os.kill(read_state(chain)["streamer"]["pid"], signal.SIGKILL)
        wait_for(lambda: read_state(chain)["streamer"]["starts"] >= 2, 20, "pg_receivewal restarted")
        later = switch_segment(streaming_pg)
        wait_for(lambda: store.exists(layout.wal_key("shop", later)), 30, "a segment after the restart")
        assert "wal streamer ended" in (tmp_path / "archiver.log").read_text()
    finally:
        assert stop_archiver(proc) == 143
    # SIGTERM stopped pg_receivewal too (it is not left streaming with nobody uploading).
    with pytest.raises(ProcessLookupError):
        os.kill(read_state(chain)["streamer"]["pid"], 0)
