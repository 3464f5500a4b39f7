"""compare_descriptions: every difference between a manifest and a restored copy, named."""

from __future__ import annotations

from restorable.engines.compare import compare_descriptions
from restorable.metadata import Description, SnapshotMetadata


def test_compare_descriptions_messages():
    expected = SnapshotMetadata(
        server_version="15.20",
        row_counts={"sales.orders": 1200, "sales.gone": 1},
        schema={
            "tables": {
                "sales.orders": {
                    "columns": [
                        {"name": "id", "type": "bigint", "nullable": False},
                        {"name": "total", "type": "numeric(12,2)", "nullable": True},
                    ],
                    "primary_key": ["id"],
                }
            },
            "indexes": {"sales.orders_pkey": "CREATE UNIQUE INDEX orders_pkey ..."},
            "sequences": {
                "sales.a": {"last_value": 10, "is_called": True, "increment": 1},
                "sales.b": {"last_value": 10, "is_called": True, "increment": 1},
            },
            "large_objects": {"count": 2, "md5": "x"},
        },
    )
    found = Description(
        row_counts={"sales.orders": 1199, "sales.extra": 0},
        schema={
            "tables": {
                "sales.orders": {
                    "columns": [
                        {"name": "id", "type": "bigint", "nullable": True},
                        {"name": "total", "type": "numeric", "nullable": True},
                    ],
                    "primary_key": [],
                }
            },
            "indexes": {},
            "sequences": {
                "sales.a": {"last_value": 12, "is_called": True, "increment": 1},  # ahead: tolerated
                "sales.b": {"last_value": 9, "is_called": True, "increment": 1},
            },
            "large_objects": {"count": 1, "md5": "y"},
        },
    )
    diffs = compare_descriptions(expected, found)
    assert "row count of sales.orders: expected 1200, found 1199" in diffs
    assert "column sales.orders.total: type numeric(12,2) expected, found numeric" in diffs
    assert "column sales.orders.id: NOT NULL expected, found nullable" in diffs
    assert "primary key of sales.orders: (id) expected, found (none)" in diffs
    assert "table sales.gone: missing (expected 1 rows)" in diffs
    assert "table sales.extra: not expected (found 0 rows)" in diffs
    assert "index sales.orders_pkey: missing" in diffs
    assert any(d.startswith("sequence sales.b: value 10") for d in diffs)
    assert not any("sales.a" in d for d in diffs)
    assert "large_objects.count: 2 expected, found 1" in diffs
    assert len(diffs) == 10, diffs
    assert compare_descriptions(expected, Description(expected.row_counts, expected.schema)) == []


def test_keys_of_odd_names_are_unambiguous_and_read_back():
    from restorable.metadata import legacy_key, object_key, split_key

    assert object_key("x", "y.z") == 'x."y.z"' and object_key("x.y", "z") == '"x.y".z'
    assert object_key("sales", "orders") == "sales.orders"
    odd = ["Ünï schéma", 'quo"te', "line\nbreak", "Mixed Case", "a.b", "1st", ""]
    for name in odd:
        key = object_key("s", name, name)
        assert split_key(key) == ["s", name, name]
        assert legacy_key(key) == f"s.{name}.{name}"
    assert split_key("sales.Order Notes") is None  # an unquoted key from an older manifest
    assert legacy_key('function "S".f("My Type")') == 'function S.f("My Type")'  # arguments as written


def test_manifest_keys_written_before_names_were_quoted_still_compare():
    table = {"columns": [{"name": "id", "type": "integer", "nullable": False}], "primary_key": ["id"]}
    old = SnapshotMetadata(
        server_version="15.20",
        row_counts={"sales.Order Notes": 3, "x.y.z": 1},
        schema={"tables": {"sales.Order Notes": table}, "indexes": {"sales.Order Notes_pkey": "CREATE ..."}},
    )
    found = Description(
        # Two tables the old key "x.y.z" cannot tell apart: neither is taken for it.
        row_counts={'sales."Order Notes"': 3, 'x."y.z"': 1, '"x.y".z': 1},
        schema={"tables": {'sales."Order Notes"': table}, "indexes": {'sales."Order Notes_pkey"': "CREATE ..."}},
    )
    assert compare_descriptions(old, found) == [
        'table "x.y".z: not expected (found 1 rows)',
        'table x."y.z": not expected (found 1 rows)',
        "table x.y.z: missing (expected 1 rows)",
    ]
    found.row_counts['sales."Order Notes"'] = 2
    assert 'row count of sales."Order Notes": expected 3, found 2' in compare_descriptions(old, found)
