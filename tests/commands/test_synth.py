import orcd.gguf
from orcd.cli import main
from orcd.models import describe


def test_synth_writes_a_model(tmp_path, capsys):
    out = tmp_path / "oss.gguf"
    assert main(["synth", "gpt-oss", "--quant", "MXFP4", "-o", str(out), "--seed", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    with orcd.gguf.open(out) as f:
        cfg = describe(f)
        types = {t.ggml_type.name for t in f.tensors.values()}
    assert cfg.arch == "gpt-oss" and cfg.is_moe and types == {"MXFP4", "Q8_0", "F32"}


def test_synth_is_deterministic(tmp_path):
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    for path in (a, b):
        assert main(["synth", "llama", "--quant", "Q4_K_M", "-o", str(path)]) == 0
    assert a.read_bytes() == b.read_bytes()
