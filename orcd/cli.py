"""The `orcd` command: a dispatcher over the subcommands in orcd/commands/.

Each subcommand module exposes `HELP` (one line), `add_arguments(parser)` and
`run(args) -> int`. Modules are imported only when their subcommand runs, so
`orcd inspect` does not pay for the server's imports. Every option of a subcommand can
also be given as an environment variable ORCD_<OPTION> (see orcd.commands.env_default).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from orcd.errors import OrcdError

SUBCOMMANDS = ["serve", "generate", "inspect", "synth", "tokenizer", "bench"]


def _module(name: str):
    return importlib.import_module(f"orcd.commands.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orcd", description="orcd: a single-GPU LLM inference worker (one GGUF model in VRAM, tokens over SSE)",
        epilog="Every option can also be set as ORCD_<OPTION>, e.g. ORCD_PORT=8081.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        try:
            mod = _module(name)
        except ModuleNotFoundError as e:
            if e.name != f"orcd.commands.{name}":
                raise
            continue
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args._run(args) or 0
    except OrcdError as e:
        print(f"orcd {args.command}: {e.code}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
