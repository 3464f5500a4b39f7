"""The plugin's HTML: the status board and a Restorable DAG's tab, rendered on the server.

Everything a page needs is in it (inline CSS, inline SVG from ``restorable.charts``): the plugin
serves no script and loads nothing from elsewhere. Pages are shown in the Airflow UI's iframe, so
links to Airflow's own pages open in the top window. No Airflow import here: the routes in
``plugin`` gather the figures, these functions only lay them out.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from restorable.charts import Series, chart, fit_line, restore_forecast
from restorable.progress import human_bytes
from restorable.status_board import DatabaseStatus, History, human_age

STYLE = (
    "body{font-family:sans-serif;margin:1.2em;color:#222}"
    "table{border-collapse:collapse}td,th{padding:.35em .7em;border-bottom:1px solid #ddd;text-align:left;"
    "vertical-align:top;white-space:nowrap}th{font-size:90%;color:#555}small{color:#666}a{color:#2f6fb0}"
    ".state{display:inline-block;width:.9em;height:.9em;border-radius:50%;margin-right:.3em;vertical-align:-1px}"
    ".green{background:#3c8d4a}.amber{background:#e0a100}.red{background:#c62828}"
    ".charts{display:flex;flex-wrap:wrap;gap:1em}.forecast{font-size:115%;margin:.6em 0 1em}"
)
esc = html.escape


def _page(title: str, body: str) -> str:
    return f"<!doctype html><meta charset=utf-8><title>{esc(title)}</title><style>{STYLE}</style>{body}"


def _when(seconds: float | None) -> str:
    return "-" if seconds is None else f"{human_age(seconds)} ago"


def _dag_link(dag_id: str, text: str) -> str:
    return f'<a href="/dags/{esc(dag_id)}" target="_top">{esc(text)}</a>'


def _against(value: float | None, objective: float | None) -> str:
    if value is None:
        return "-"
    return f"{human_age(value)}" + (f" <small>/ {human_age(objective)}</small>" if objective else "")


def board_page(statuses: list[DatabaseStatus], object_lock: dict[str, tuple[str, int] | None], prefix: str) -> str:
    """The Backups page: one row per database the user may see."""
    rows = []
    for s in statuses:
        o = s.objectives
        drill = "never" if s.drill_passed is None else ("passed" if s.drill_passed else "<b>FAILED</b>")
        if s.drill_age_seconds is not None:
            drill += f" <small>{_when(s.drill_age_seconds)}</small>"
        lock = object_lock.get(s.database_id)
        evidence = s.newest_verified or s.newest_backup
        cells = [
            f'<span class="state {s.state}" title="{esc("; ".join(s.reasons) or "within every objective")}"></span>'
            f"{s.state}",
            f'<a href="{prefix}/dag/backup__{esc(s.database_id)}"><b>{esc(s.database_id)}</b></a> '
            f"<small>{esc(s.engine)}</small><br><small>{_dag_link('backup__' + s.database_id, 'backup')} · "
            f"{_dag_link('restore_drill__' + s.database_id, 'drill')}</small>",
            "-"
            if s.rpo_seconds is None
            else _against(s.rpo_seconds, o.get("rpo")) + "<br><small>RPO now / objective</small>",
            (f"{esc(s.newest_backup)}<br><small>{_when(s.newest_age_seconds)}</small>" if s.newest_backup else "none"),
            (
                f"{esc(s.newest_verified)}<br><small>{_against(s.verified_age_seconds, o.get('verified_age'))}</small>"
                if s.newest_verified
                else "none"
            ),
            drill,
            "-" if s.drill_rto_seconds is None else f"{s.drill_rto_seconds:.1f} s",
            f"{human_bytes(s.stored_bytes)}<br><small>{s.backups} backup(s)</small>",
            (f"{esc(lock[0])} {lock[1]} d<br><small>{s.locked_backups} locked</small>" if lock else "off"),
            (f'<a href="{prefix}/api/evidence/{esc(s.database_id)}/{esc(evidence)}">evidence</a>' if evidence else "-"),
        ]
        reasons = "".join(f"<li>{esc(r)}</li>" for r in s.reasons)
        rows.append(
            "<tr>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
            + (
                f'<tr><td></td><td colspan="9"><small><ul style="margin:0">{reasons}</ul></small></td></tr>'
                if reasons
                else ""
            )
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "state",
            "database",
            "RPO",
            "newest backup",
            "newest verified / objective",
            "last drill",
            "RTO",
            "stored",
            "Object Lock",
            "",
        )
    )
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = f"<table><tr>{head}</tr>{''.join(rows)}</table>" if rows else "<p>No database you may see.</p>"
    return _page(
        "Restorable: backups",
        f"<h2>Backups</h2><p><small>From the bucket at {now}: the figures the alert rules read. "
        "Red: an objective is missed; amber: one is near, or no drill yet.</small></p>" + table,
    )


def not_restorable_page(dag_id: str) -> str:
    return _page(
        "Restorable",
        f"<p><b>{esc(dag_id)}</b> is not one of Restorable's per-database DAGs, so it has no backups "
        "to chart.</p><p><small>Restorable's tabs show under <code>backup__&lt;db&gt;</code>, "
        "<code>restore_drill__&lt;db&gt;</code>, <code>base_backup__&lt;db&gt;</code>, "
        "<code>pitr_drill__&lt;db&gt;</code> and <code>monitor__&lt;db&gt;</code>.</small></p>",
    )


def forecast_sentence(hist: History) -> str:
    drills = [(d["plain_bytes"], d["rto_seconds"]) for d in hist.drills if d["ok"] and d["rto_seconds"] is not None]
    sizes = [b["plain_bytes"] for b in hist.backups if b["plain_bytes"]]
    if not sizes:
        return "No backup yet: nothing to forecast."
    seconds = restore_forecast([(x, y) for x, y in drills if x], sizes[-1])
    if seconds is None:
        return "No passed drill yet: run one to forecast the restore time."
    took = f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"
    return (
        f"A restore of today's size ({human_bytes(sizes[-1])}) would take about <b>{took}</b> "
        f"<small>(from {len(drills)} passed drill(s))</small>."
    )


def dag_tab_page(database_id: str, engine: str, hist: History, prefix: str) -> str:
    """A Restorable DAG's tab: history charts, the restore-time forecast and the drills with evidence."""
    logical = [b for b in hist.backups if b["kind"] == "logical"]
    physical = [b for b in hist.backups if b["kind"] != "logical"]

    def over_time(field: str, scale: float = 1.0) -> list[Series]:
        return [
            Series(name, [(b["created"], b[field] / scale) for b in rows if b[field] is not None])
            for name, rows in (("logical", logical), ("base backup", physical))
            if rows
        ]

    sizes = [
        Series("plain", [(b["created"], b["plain_bytes"]) for b in hist.backups if b["plain_bytes"] is not None]),
        Series("stored", [(b["created"], b["stored_bytes"]) for b in hist.backups if b["stored_bytes"] is not None]),
    ]
    rto = [
        (d["plain_bytes"], d["rto_seconds"]) for d in hist.drills if d["rto_seconds"] is not None and d["plain_bytes"]
    ]
    charts = [
        chart("Backup duration", over_time("seconds"), y_label="seconds"),
        chart("Backup size", sizes, y_label="bytes"),
        chart("Throughput", over_time("mb_per_s"), y_label="MB/s"),
        chart(
            "Restore time (RTO) per drill against size",
            [Series("drills", rto)],
            y_label="seconds",
            x_is_time=False,
            x_label="backup size (bytes, before compression)",
            trend=fit_line(rto),
        ),
    ]
    rows = []
    for d in reversed(hist.drills):
        when = datetime.fromtimestamp(d["checked_at"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        verdict = "passed" if d["ok"] else f"<b>FAILED</b> {esc(d['failed_step'] or '')}"
        rto_text = "-" if d["rto_seconds"] is None else f"{d['rto_seconds']:.1f} s"
        link = f'<a href="{prefix}/api/evidence/{esc(database_id)}/{esc(d["backup_id"])}">evidence</a>'
        cells = [when, esc(d["kind"]), esc(d["backup_id"]), verdict, rto_text, link]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("checked", "kind", "backup", "verdict", "RTO", ""))
    drills = f"<table><tr>{head}</tr>{''.join(rows)}</table>" if rows else "<p>No drill yet.</p>"
    return _page(
        f"Restorable: {database_id}",
        f"<h2>{esc(database_id)} <small>{esc(engine)}, {len(hist.backups)} backup(s), "
        f"{len(hist.drills)} drill(s)</small></h2>"
        f'<p class="forecast">{forecast_sentence(hist)}</p>'
        f'<div class="charts">{"".join(charts)}</div><h3>Drills</h3>{drills}',
    )
