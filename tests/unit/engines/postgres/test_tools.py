"""PostgreSQL client plumbing without a server: version parsing and the client-too-old check."""

from __future__ import annotations

import pytest

from restorable.engines.postgres import tools as pg_tools
from restorable.exceptions import ToolError


def test_version_comparison():
    assert pg_tools.version_major("15.20") == (15,)
    assert pg_tools.version_major("9.6.24") == (9, 6)
    assert pg_tools.version_major("16beta1") == (16,)
    assert pg_tools.version_major("15.20 (Debian 15.20-0+deb12u1)") == (15,)
    assert pg_tools.dump_tool_too_old("15.20", "16.1")
    assert pg_tools.dump_tool_too_old("9.6.24", "10.3")
    assert pg_tools.dump_tool_too_old("9.5.1", "9.6.0")
    assert not pg_tools.dump_tool_too_old("15.2", "15.20")
    assert not pg_tools.dump_tool_too_old("16.2", "15.4 (Debian)")
    assert not pg_tools.dump_tool_too_old("10.0", "9.6.3")
    assert pg_tools.parse_tool_version("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)") == "15.20"
    assert pg_tools.parse_tool_version("pg_restore (PostgreSQL) 17beta2") == "17beta2"
    with pytest.raises(ToolError, match=r"local pg_dump 15\.20 .* older than the server 16\.3.*postgresql-client-16"):
        pg_tools.check_tool_for("pg_dump", "/usr/bin/pg_dump", "15.20", "16.3", "server")
    pg_tools.check_tool_for("pg_dump", "/usr/bin/pg_dump", "16.0", "15.20", "server")
