"""The second region of the copy tests: a SeaweedFS of its own, shared by every test here."""

from __future__ import annotations

import pytest

from devstack.seaweedfs import SeaweedS3

#: A read-and-list identity on the second region, for the host that holds only the copy.
READER = "copy_reader"


@pytest.fixture(scope="package")
def region_b(tmp_path_factory):
    """The second region: its own SeaweedFS, with a read-only identity for the copy-alone host."""
    from tests.conftest import _reap_if_killed

    server = SeaweedS3(tmp_path_factory.mktemp("region_b"), identities={READER: {"actions": ["Read", "List"]}})
    try:
        server.start()
        _reap_if_killed(server, server.state_dir)
        yield server
    finally:
        server.stop()
