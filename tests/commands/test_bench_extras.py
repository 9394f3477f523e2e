"""`orcd bench extras` on the CPU engine: every mode measured, the added cost against plain."""
import json

from orcd.cli import build_parser


def test_bench_extras_reports_every_mode(tiny_model, capsys):
    args = build_parser().parse_args(["bench", "extras", "--device", "cpu", "--model",
                                      str(tiny_model("qwen2", "Q8_0")), "--tokens", "4", "--repeats", "1", "--json"])
    assert args._scenario_run(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["modes"]) == {"plain", "logprobs 0", "logprobs 20", "json schema", "json schema + logprobs 20"}
    assert out["modes"]["plain"]["added_ms_per_token"] == 0 and all(m["ms_per_token"] > 0 for m in out["modes"].values())
