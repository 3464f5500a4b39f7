"""What an integrity check of a restored copy found: the engine's own checker, not a comparison.

A restore can match every row count and still hold an index that disagrees with its table (a
bug in the restore tool, a storage fault on the drill server, a collation change between the
source's and the target's C library). Drills run the engine's checker (PostgreSQL's amcheck,
MariaDB's ``CHECK TABLE ... EXTENDED``) after the restore and before Great Expectations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: At most this many problems are kept in a report (the evidence must stay small).
MAX_PROBLEMS = 50


@dataclass
class IntegrityReport:
    #: The checker used, e.g. "amcheck (bt_index_check heapallindexed, verify_heapam)".
    method: str
    #: How many objects of each kind were checked: {"indexes": 12, "tables": 9}.
    checked: dict[str, int] = field(default_factory=dict)
    #: One line per problem, naming the object: "index public.orders_pkey: ...".
    problems: list[str] = field(default_factory=list)
    #: Problems found beyond ``MAX_PROBLEMS``.
    more_problems: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.more_problems += 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}
