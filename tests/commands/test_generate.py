"""`orcd generate` end to end, through the CLI dispatcher, on the CPU engine."""
import pytest

from orcd import _cuda
from orcd.cli import main
from orcd.testing.synth import write_model

SUM = "What is 2+2? Answer with a number only."


def generate(capsys, *argv):
    code = main(["generate", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.skipif(_cuda.device_count() > 0, reason="a GPU is visible: the CUDA engine would run")
def test_without_a_gpu_the_default_device_points_to_cpu(capsys, smollm2_path):
    code, out, err = generate(capsys, "hello")
    assert code == 1 and out == ""
    assert "--device cpu" in err


def test_chat_greedy_answer_is_streamed(capsys, smollm2_path):
    code, out, err = generate(capsys, "--device", "cpu", "--chat", "--temperature", "0", SUM)
    assert (code, out) == (0, "2 + 2 = 4\n")


def test_options_come_from_the_environment(capsys, monkeypatch, smollm2_path):
    for name, value in {"DEVICE": "cpu", "CHAT": "1", "TEMPERATURE": "0", "MAX_TOKENS": "4",
                        "MODEL": str(smollm2_path)}.items():
        monkeypatch.setenv(f"ORCD_{name}", value)
    assert generate(capsys, SUM)[:2] == (0, "2 + 2\n")


def test_stop_string_ends_the_text(capsys, smollm2_path):
    code, out, _ = generate(capsys, "--device", "cpu", "--chat", "--temperature", "0", "--stop", " =", SUM)
    assert (code, out) == (0, "2 + 2\n")


def test_out_of_range_sampling_option_names_the_field(capsys, tmp_path):
    model = write_model(tmp_path / "tiny.gguf", "qwen2")
    code, out, err = generate(capsys, "--device", "cpu", "--model", str(model), "--top-p", "0", "hi")
    assert code == 1 and "INVALID_REQUEST" in err and "top_p" in err


def test_sampled_text_replays_with_its_seed(capsys, tmp_path):
    model = str(write_model(tmp_path / "tiny.gguf", "qwen2"))
    argv = ["--device", "cpu", "--model", model, "--max-tokens", "12", "--seed", "5", "hi"]
    first = generate(capsys, *argv)
    assert first[0] == 0 and len(first[1]) > 1
    assert generate(capsys, *argv) == first
