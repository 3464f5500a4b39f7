"""The top-level ``metrics`` block: the Pushgateway runs push to, and the exporter's objectives.

Parsed with the config's own field reader (``config._Fields``), so its mistakes read like the rest:
the file, the field and what to write instead. Without ``pushgateway_url``, runs push to
``$RESTORABLE_PUSHGATEWAY_URL`` when that is set (how the demo stack hands its Pushgateway to Airflow's
tasks without editing the config).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from restorable.config import MetricsConfig, _Fields
from restorable.exceptions import ConfigError

PUSHGATEWAY_ENV = "RESTORABLE_PUSHGATEWAY_URL"


def parse_metrics(data: Any, where: str, env: Mapping[str, str]) -> MetricsConfig:
    if data is None:
        data = {}
    from restorable.lifecycle.policy import parse_duration

    f = _Fields(data, where, env)
    url = f.text("pushgateway_url", None)
    if url is not None:
        url = _pushgateway_url(url.strip(), f"{where}.pushgateway_url")
    elif env.get(PUSHGATEWAY_ENV):
        url = _pushgateway_url(env[PUSHGATEWAY_ENV].strip(), f"${PUSHGATEWAY_ENV}")
    job = f.text("job", "restorable")
    if not job or "/" in job:
        raise ConfigError(f"{where}.job: {job!r} is not a job name", hint="Use a short name without '/'")
    defaults = MetricsConfig()
    durations = {
        key: parse_duration(f.text(key, default), where=f"{where}.{key}")
        for key, default in (("max_backup_age", "26h"), ("max_verified_age", "26h"), ("max_drill_age", "8d"))
    }
    for key, value in durations.items():
        if value.total_seconds() <= 0:
            raise ConfigError(f"{where}.{key}: must be longer than zero")
    config = MetricsConfig(
        pushgateway_url=url,
        job=job,
        push_timeout_seconds=f.integer("push_timeout_seconds", defaults.push_timeout_seconds, minimum=1, maximum=60),
        cache_seconds=f.integer("cache_seconds", defaults.cache_seconds, minimum=0, maximum=3600),
        **durations,
    )
    f.check_unknown()
    return config


def _pushgateway_url(url: str, where: str) -> str:
    """An http(s) URL with a host and no credentials (the URL is logged when a push fails)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: {url!r} is not an http(s) URL", hint="Write it as http://host:9091")
    if parts.username or parts.password:
        raise ConfigError(
            f"{where}: the URL holds credentials",
            hint="Put the Pushgateway behind a network boundary instead; the URL appears in logs",
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{where}: {url!r} has a query or fragment", hint="Give only scheme, host, port and path")
    return url.rstrip("/")
