"""The report as PDF, drawn with fpdf2.

Why fpdf2: pure Python from PyPI (with fontTools, Pillow and defusedxml, all wheels), no system
library and nothing downloaded at run time, maintained by the py-pdf organisation. WeasyPrint would
render the HTML itself but needs Pango from the system; ReportLab is as self-contained but heavier
for a few tables. The core PDF fonts cover Latin-1 only, so text is folded to it (``_latin1``).
"""

from __future__ import annotations

from typing import Any

from restorable.report.render import percent, seconds, verdict

_FOLD = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2026": "..."})


def _latin1(text: Any) -> str:
    return str(text).translate(_FOLD).encode("latin-1", "replace").decode("latin-1")


class _Document:
    def __init__(self) -> None:
        from fpdf import FPDF

        self.pdf = FPDF(format="A4")
        self.pdf.set_auto_page_break(auto=True, margin=15)
        self.pdf.set_title("Backup audit evidence report")
        self.pdf.set_creator("Restorable")
        self.pdf.add_page()

    def heading(self, text: str, size: int = 13) -> None:
        self.pdf.set_font("Helvetica", "B", size)
        self.pdf.ln(2)
        self.pdf.multi_cell(0, size * 0.5, _latin1(text), align="L", new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(1)

    def text(self, text: str, size: int = 9, style: str = "") -> None:
        self.pdf.set_font("Helvetica", style, size)
        self.pdf.multi_cell(0, size * 0.48, _latin1(text), align="L", new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(1)

    def table(self, rows: list[list[Any]], widths: tuple[int, ...] | None = None, size: int = 8) -> None:
        self.pdf.set_font("Helvetica", "", size)
        with self.pdf.table(
            col_widths=widths, line_height=size * 0.55, first_row_as_headings=True, text_align="LEFT"
        ) as table:
            for row in rows:
                cells = table.row()
                for value in row:
                    cells.cell(_latin1(value))
        self.pdf.ln(2)


def _headline(doc: _Document, report: dict[str, Any]) -> None:
    totals, objectives = report["totals"], report["objectives"]
    backup_rate, drill_rate = totals["backup_success_rate"], totals["drill_pass_rate"]
    doc.table(
        [
            ["objective", "target", "measured", "verdict"],
            [
                "Scheduled backups succeeded",
                percent(objectives["backup_success"]),
                f"{totals['backups_succeeded']} of {totals['backups_scheduled']} = {percent(backup_rate)}",
                verdict(backup_rate is not None and backup_rate >= objectives["backup_success"]),
            ],
            [
                "Restore drills passed",
                percent(objectives["drill_pass"]),
                f"{totals['drills_passed']} of {totals['drills_run']} = {percent(drill_rate)}",
                verdict(drill_rate is not None and drill_rate >= objectives["drill_pass"]),
            ],
            ["Failures in the period", "0", str(totals["failures"]), verdict(not totals["failures"])],
        ],
        widths=(60, 25, 65, 25),
        size=9,
    )


def _database(doc: _Document, db: dict[str, Any]) -> None:
    b, d = db["backups"], db["drills"]
    doc.heading(f"Database {db['database_id']} ({db['engine']})", 12)
    doc.table(
        [
            ["backups scheduled", "taken", "verified", "succeeded", "success rate", "objective"],
            [
                f"{b['scheduled']} ({db['schedule'] or 'manual only'})",
                b["taken"],
                b["verified"],
                b["succeeded"],
                percent(b["success_rate"]),
                f"{percent(b['objective'])}: {verdict(b['met'])}",
            ],
        ]
    )
    doc.table(
        [
            ["drills scheduled", "run", "passed", "pass rate", "objective"],
            [
                d["scheduled"],
                d["run"],
                d["passed"],
                percent(d["pass_rate"]),
                f"{percent(d['objective'])}: {verdict(d['met'])}",
            ],
        ]
    )
    if db["drill_runs"]:
        rows = [["drill", "when", "backup", "result", "RTO (objective)", "RPO (objective)"]]
        for r in db["drill_runs"]:
            rows.append(
                [
                    r["kind"],
                    r["scheduled_for"] or r["at"],
                    r["backup_id"],
                    "passed" if r["ok"] else "FAILED",
                    f"{seconds(r['rto_seconds'])} ({seconds(r['rto_objective_seconds'])}: {verdict(r['rto_met'])})",
                    f"{seconds(r['rpo_seconds'])} ({seconds(r['rpo_objective_seconds'])}: {verdict(r['rpo_met'])})",
                ]
            )
        doc.table(rows, widths=(16, 34, 38, 16, 36, 36), size=7)
    doc.text("Failures", 10, "B")
    if db["failures"]:
        rows = [["when", "what", "alert / runbook", "fixed by"]]
        for f in db["failures"]:
            fix = f["fixed_by"]
            fixed = (
                f"{fix['what']} at {fix['at']} ({fix.get('backup_id') or fix.get('key')})" if fix else "not fixed yet"
            )
            rows.append([f["at"], f["what"], f"{f['alert']}; {f['runbook']}", fixed])
        doc.table(rows, widths=(28, 62, 45, 55), size=7)
    else:
        doc.text("None.")
    lock = db["object_lock"]
    configured = lock["configured"]
    doc.text("Retention, Object Lock and encryption", 10, "B")
    retention = ", ".join(f"{k}: {v}" for k, v in sorted((db["retention"] or {}).items())) or "keep everything"
    rows = [
        ["setting", "value"],
        ["retention", retention],
        [
            "Object Lock",
            (f"{configured['mode']} {configured['days']} days" if configured else "not configured")
            + f"; applied to {lock['backups_locked']} of {lock['backups']} backups of the period",
        ],
    ]
    for r in db["encryption"]:
        age = f" ({r['key_age_days']} days)" if r["key_age_days"] is not None else ""
        rows.append(
            [
                "recipient" + ("" if r["in_config"] else " (retired)"),
                f"{r['recipient']}: {r['backups_in_period']} backups in the period, in use since "
                f"{r['first_used'] or 'never used'}{age}",
            ]
        )
    for k in db.get("kms_keys", []):
        versions = ", ".join(str(v) for v in k["versions"])
        rows.append(["KMS key", f"{k['kms']} {k['key_name']}, versions {versions}: {k['backups']} backups wrapped"])
    doc.table(rows, widths=(35, 155))
    doc.text("Evidence keys", 10, "B")
    doc.text("\n".join(db["evidence_keys"]) or "none", 6)


def to_pdf(report: dict[str, Any], statement: list[str]) -> bytes:
    doc = _Document()
    doc.heading("Backup audit evidence report", 16)
    doc.text(
        f"Period: {report['period']['label']}  -  bucket s3://{report['bucket']}/{report['prefix']}  -  "
        f"generated {report['generated_at']} by Restorable"
    )
    _headline(doc, report)
    doc.heading("What was tested, and how", 12)
    for paragraph in statement:
        doc.text(paragraph)
    settings = report["bucket_settings"]
    doc.heading("Bucket settings (as audited)", 12)
    rules = settings.get("lifecycle_rules")
    doc.table(
        [
            ["setting", "found"],
            ["versioning", settings.get("versioning")],
            ["Object Lock", settings.get("object_lock")],
            ["lifecycle rules", ", ".join(rules) if isinstance(rules, list) else rules],
            [
                "differences",
                "; ".join(
                    f"{d['setting']}: expected {d['expected']}, found {d['found']}" for d in settings.get("drifts", [])
                )
                or "none",
            ],
        ],
        widths=(35, 155),
    )
    for db in report["databases"]:
        doc.pdf.add_page()
        _database(doc, db)
    return bytes(doc.pdf.output())
