"""``python -m devstack start|stop|status``: the demo stack (see ``stack``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from devstack import stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Start, stop or show the local demo stack (PostgreSQL, MariaDB, SeaweedFS S3).",
    )
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=stack.DEFAULT_STATE_DIR,
        help="where data, stack.json and stack.env live (default: .state/stack)",
    )
    parser.add_argument(
        "--scale-mb",
        type=float,
        default=20.0,
        help="approximate size of each sample database in MB (start only; default 20)",
    )
    parser.add_argument("--seed", type=int, default=1, help="sample data seed (start only)")
    parser.add_argument(
        "--monitoring",
        action="store_true",
        help="also start Prometheus, Pushgateway and Alertmanager (start only; make demo does)",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)

    if args.command == "start":
        stack.start(args.state_dir, scale_mb=args.scale_mb, seed=args.seed, monitoring=args.monitoring)
        report = stack.status(args.state_dir)
    elif args.command == "stop":
        stopped = stack.stop(args.state_dir)
        report = {"stopped": stopped}
    else:
        report = stack.status(args.state_dir)

    if args.json:
        print(json.dumps(report, indent=2))
    elif args.command == "stop":
        print("stopped: " + (", ".join(report["stopped"]) or "nothing was running"))
    elif not report["services"]:
        print("not running")
    else:
        print(f"{'service':<14} {'kind':<10} {'up':<4} {'port':<6} {'pid':<8} conn_id")
        for name, svc in report["services"].items():
            print(
                f"{name:<14} {svc['kind']:<10} {'yes' if svc['up'] else 'NO':<4} {svc['port'] or '':<6} "
                f"{svc['pid'] or '':<8} {svc['conn_id']}"
            )
        print(f"bucket: {report['bucket']}   connections: source {report['env_file']}")
        if monitoring := report.get("monitoring"):
            urls = monitoring["urls"]
            print(
                f"monitoring ({'up' if monitoring['up'] else 'NOT up'}): prometheus {urls['prometheus']}  "
                f"alertmanager {urls['alertmanager']}  pushgateway {urls['pushgateway']}  "
                f"exporter {monitoring['exporter']}"
            )
    if args.command == "status":
        return 0 if report.get("running") else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
