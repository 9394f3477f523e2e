"""orcd synth: write a synthetic GGUF model (tests, benchmarks, the architectures whose real
weights cannot be downloaded here)."""
from __future__ import annotations

from orcd.commands import env_default
from orcd.models import ARCHITECTURES
from orcd.testing.quant_mix import MIXES

HELP = "write a synthetic GGUF model of a supported architecture (tiny or real-size)"


def add_arguments(parser) -> None:
    parser.add_argument("arch", metavar="ARCH", choices=ARCHITECTURES,
                        help="architecture: " + ", ".join(ARCHITECTURES))
    parser.add_argument("--preset", choices=("tiny", "real"), default=env_default("--preset", "tiny"),
                        help="tiny: a few MB of real float weights; real: the target's exact shape")
    parser.add_argument("--quant", choices=MIXES, default=env_default("--quant", "F32"), help="quant mix")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the GGUF file to write")
    parser.add_argument("--seed", type=int, default=env_default("--seed", 0, int),
                        help="seed of the weights (default 0)")


def run(args) -> int:
    from orcd.testing.synth import write_model

    path = write_model(args.output, args.arch, preset=args.preset, quant=args.quant, seed=args.seed)
    print(path)
    return 0
