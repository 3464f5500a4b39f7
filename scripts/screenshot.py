"""Capture the Airflow UI, logged in, with headless Chromium: docs/screenshots/airflow-dags.png.

    python scripts/screenshot.py --url http://127.0.0.1:8080 --airflow-home "$AIRFLOW_HOME"

A plain ``chromium --screenshot`` lands on the login page. So: get a JWT from the API server
(``POST /auth/token``; in ``airflow standalone`` the simple auth manager's generated password
file sits in AIRFLOW_HOME), start Chromium with the DevTools protocol on a local port, set the
token as the ``_token`` cookie, open the page, wait for it to render, and capture it.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
PASSWORD_FILES = ("simple_auth_manager_passwords.json.generated", "simple_auth_manager_passwords.json")


def admin_password(airflow_home: Path, user: str) -> str:
    """The simple auth manager's password for ``user`` (standalone writes it into AIRFLOW_HOME)."""
    for name in PASSWORD_FILES:
        path = airflow_home / name
        if path.exists():
            passwords = json.loads(path.read_text())
            if user in passwords:
                return passwords[user]
    raise SystemExit(f"no password for {user!r} in {airflow_home} ({', '.join(PASSWORD_FILES)}); pass --password")


def get_token(base_url: str, user: str, password: str) -> str:
    request = urllib.request.Request(
        f"{base_url}/auth/token",
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (local Airflow)
        return json.loads(response.read())["access_token"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CDP:
    """The smallest DevTools-protocol client: send a command, wait for its reply, collect events."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == msg_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)
        raise TimeoutError(method)

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            try:
                message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                break
            if message.get("method") == method:
                return message
        return None


def wait_for_devtools(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"Chromium's DevTools did not come up on port {port}")


def page_target(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:  # noqa: S310
        for target in json.loads(response.read()):
            if target.get("type") == "page":
                return target["webSocketDebuggerUrl"]
    raise SystemExit("no page target in Chromium")


def capture(
    base_url: str, path: str, token: str, out: Path, *, chromium: str, width: int, height: int, settle: float
) -> None:
    port = free_port()
    profile = tempfile.mkdtemp(prefix="restorable-chromium-")
    argv = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--remote-debugging-port={port}",
        "--remote-debugging-address=127.0.0.1",
        f"--window-size={width},{height}",
        "about:blank",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from websockets.sync.client import connect

        wait_for_devtools(port)
        with connect(page_target(port), max_size=None, open_timeout=30) as ws:
            cdp = CDP(ws)
            cdp.call("Page.enable")
            cdp.call("Network.enable")
            cdp.call(
                "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
            )
            parsed = urllib.parse.urlsplit(base_url)
            cdp.call(
                "Network.setCookie",
                name="_token",
                value=token,
                domain=parsed.hostname,
                path="/",
                httpOnly=False,
                secure=parsed.scheme == "https",
            )
            cdp.events.clear()
            cdp.call("Page.navigate", url=base_url.rstrip("/") + path)
            cdp.wait_event("Page.loadEventFired", timeout=60)
            time.sleep(settle)  # the React UI fetches the DAG list after load
            shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=False, timeout=60)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the Airflow API server")
    parser.add_argument("--path", default="/dags", help="the UI page to capture")
    parser.add_argument("--airflow-home", type=Path, default=None, help="where the password file is")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default=None, help="default: read from AIRFLOW_HOME's password file")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots/airflow-dags.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--settle", type=float, default=4.0, help="seconds to let the page render")
    args = parser.parse_args(argv)
    import os

    home = args.airflow_home or Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    password = args.password or admin_password(home, args.user)
    token = get_token(args.url.rstrip("/"), args.user, password)
    capture(
        args.url.rstrip("/"),
        args.path,
        token,
        args.out,
        chromium=args.chromium,
        width=args.width,
        height=args.height,
        settle=args.settle,
    )
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
