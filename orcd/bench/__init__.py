"""Benchmark scenarios of `orcd bench`; each module follows the subcommand protocol of
orcd/commands/bench.py."""
