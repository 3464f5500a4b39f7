"""The DEFINER rewriter and the structural check, fed in awkward chunk sizes (no server)."""

from __future__ import annotations

import io

import pytest

from restorable.engines.mysql.stream import DefinerRewriter, DumpStructureCheck
from restorable.exceptions import IntegrityError, ToolError

DUMP = (
    b"""/*M!999999\\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;

CREATE TABLE `t` (
  `id` int(11) NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
LOCK TABLES `t` WRITE;
/*!40000 ALTER TABLE `t` DISABLE KEYS */;
INSERT INTO `t` VALUES (1,'/*!50013 DEFINER=`ghost`@`%` x'),(2,'"""
    + b"ab" * 20000
    + b"""');
/*!40000 ALTER TABLE `t` ENABLE KEYS */;
UNLOCK TABLES;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`ghost`@`%`*/ /*!50003 TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW
BEGIN SET NEW.id = 1; END */;;
DELIMITER ;
ALTER DATABASE `src` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;
DELIMITER ;;
CREATE DEFINER=`root`@`localhost` PROCEDURE `p`()
BEGIN SELECT 1; END ;;
DELIMITER ;
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=`we``ird`@`h` SQL SECURITY DEFINER */
/*!50001 VIEW `v` AS select 1 AS `1` */;
-- Dump completed on 2026-01-01 00:00:00
"""
)


def _rewrite(data: bytes, chunk: int, *, drop_sandbox: bool = False) -> tuple[bytes, DefinerRewriter]:
    sink = io.BytesIO()
    rewriter = DefinerRewriter(
        sink,
        accounts={("root", "localhost")},
        target_database="new`db",
        drop_sandbox_line=drop_sandbox,
        on_broken_pipe=lambda: ToolError("broken"),
    )
    for i in range(0, len(data), chunk):
        rewriter.write(data[i : i + chunk])
    rewriter.finish()
    return sink.getvalue(), rewriter


@pytest.mark.parametrize("chunk", [1, 7, 4095, 4096, 65536, 1 << 20])
def test_definer_rewrite_is_independent_of_chunking(chunk):
    out, rewriter = _rewrite(DUMP, chunk)
    expected = (
        DUMP.replace(b"/*!50017 DEFINER=`ghost`@`%`*/", b"/*!50017 DEFINER=CURRENT_USER*/")
        .replace(b"/*!50013 DEFINER=`we``ird`@`h` SQL", b"/*!50013 DEFINER=CURRENT_USER SQL")
        .replace(b"ALTER DATABASE `src`", b"ALTER DATABASE `new``db`")
    )
    assert out == expected
    # Row data that merely looks like a DEFINER clause is never touched; existing accounts are kept.
    assert b"(1,'/*!50013 DEFINER=`ghost`@`%` x')" in out
    assert b"CREATE DEFINER=`root`@`localhost` PROCEDURE" in out
    assert rewriter.definers_rewritten == {"'ghost'@'%'": 1, "'we`ird'@'h'": 1}


def test_sandbox_line_dropped_for_mysql_client():
    out, _ = _rewrite(DUMP, 100, drop_sandbox=True)
    assert out.startswith(b"-- MariaDB dump")


@pytest.mark.parametrize("chunk", [1, 13, 65536])
def test_structure_check_accepts_a_whole_dump(chunk):
    check = DumpStructureCheck()
    for i in range(0, len(DUMP), chunk):
        check.write(DUMP[i : i + chunk])
    check.verify()
    assert check.tables == ["t"] and check.insert_lines == 1


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d[: d.index(b"UNLOCK TABLES")], "trailer|LOCK TABLES"),
        (lambda d: d[: d.index(b"ab" * 100)], "inside a statement"),
        (lambda d: d.replace(b"DELIMITER ;\n/*!50001", b"/*!50001"), "DELIMITER"),
        (lambda d: b"PK\x03\x04" + d, "header"),
        (lambda d: b"", "empty"),
    ],
)
def test_structure_check_rejects_damage(damage, message):
    check = DumpStructureCheck()
    check.write(damage(DUMP))
    with pytest.raises(IntegrityError, match=message):
        check.verify()
