"""`orcd bench SCENARIO`: performance measurements on the GPU box (SPEC §10).

Each scenario is a module orcd/bench/<name>.py with the protocol of a subcommand (`HELP`,
`add_arguments(parser)`, `run(args) -> int`); a scenario whose module is absent is not offered.
"""
from __future__ import annotations

import importlib

HELP = "measure performance: kernels, decode, server, extras"
SCENARIOS = ["kernels", "decode", "server", "extras"]


def _scenario(name: str):
    try:
        return importlib.import_module(f"orcd.bench.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"orcd.bench.{name}":
            raise
        return None


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="scenario", metavar="SCENARIO", required=True)
    for name in SCENARIOS:
        mod = _scenario(name)
        if mod is None:
            continue
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_scenario_run=mod.run)


def run(args) -> int:
    return args._scenario_run(args)
