"""Subcommands of `orcd`; see orcd/cli.py for the protocol each module follows."""
from __future__ import annotations

import os


def env_default(option: str, default=None, type=str):
    """The default of `--option`: $ORCD_OPTION (dashes become underscores) if set."""
    raw = os.environ.get("ORCD_" + option.lstrip("-").replace("-", "_").upper())
    if raw is None:
        return default
    try:
        return type(raw)
    except ValueError:
        raise SystemExit(f"orcd: environment variable for {option} has a bad value {raw!r}")


def flag(raw: str) -> bool:
    """An environment variable's value as a boolean option."""
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)
