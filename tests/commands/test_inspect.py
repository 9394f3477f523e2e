import json

from orcd.cli import main
from orcd.testing.synth import write_model


def test_text_report_on_smollm2(smollm2_path, capsys):
    assert main(["inspect", str(smollm2_path)]) == 0
    out = capsys.readouterr().out
    assert "llama" in out and "134,515,008" in out and "Q4_1 ×210" in out and "Q8_0 ×1" in out
    assert "gguf-bpe" in out and "ctx 8,192" in out


def test_json_report(tmp_path, capsys):
    path = write_model(tmp_path / "phi3.gguf", "phi3", quant="Q8_0")
    assert main(["inspect", str(path), "--json", "--ctx", "1024"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["architecture"] == "phi3" and r["tokenizer"]["kind"] == "gguf-spm" and r["ctx"] == 1024
    assert set(r["quant_mix"]) == {"Q8_0", "F32"}
    assert r["vram_bytes"]["weights"] == sum(m["bytes"] for m in r["quant_mix"].values())
    v = r["vram_bytes"]
    assert v["total"] == v["weights"] + v["kv_cache"] + v["scratch"]


def test_bad_file_is_one_line_and_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 60)
    assert main(["inspect", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "MODEL_LOAD_FAILED" in err and "Traceback" not in err


def test_wrong_tensor_map_is_named(tmp_path, capsys):
    path = write_model(tmp_path / "q.gguf", "qwen2")
    raw = bytearray(path.read_bytes())
    at = raw.find(b"blk.1.ffn_up.weight")
    raw[at:at + 5] = b"blk.7"  # the tensor table now names a block the model does not have
    path.write_bytes(raw)
    assert main(["inspect", str(path)]) == 1
    assert "lacks tensor blk.1.ffn_up.weight" in capsys.readouterr().err
