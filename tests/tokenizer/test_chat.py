"""Chat templates render as Hugging Face renders them; a broken template fails at load, a
request the template refuses fails as INVALID_REQUEST."""
from __future__ import annotations

from pathlib import Path

import pytest

import orcd.tokenizer
from orcd.errors import InvalidRequest, ModelLoadError
from orcd.tokenizer.chat import ChatTemplate

TEMPLATES = Path(__file__).parent / "templates"
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"}]


def template(name: str) -> ChatTemplate:
    return ChatTemplate((TEMPLATES / name).read_text(encoding="utf-8"), "<s>", "</s>")


def test_smollm2_template_from_the_gguf(smollm2_path):
    tok = orcd.tokenizer.load(smollm2_path)
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}])
    assert text == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                    "Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                    "<|im_start|>assistant\n")
    ids = tok.encode(text, parse_special=True)
    assert ids[0] == tok.bos_id == 1 and ids.count(tok.eos_id) == 2  # <|im_end|> is eos here


def test_qwen25_chatml():
    assert template("Qwen-Qwen2.5-7B-Instruct.jinja").render(CHAT) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n")
    default_system = template("Qwen-Qwen2.5-7B-Instruct.jinja").render(CHAT[1:2])
    assert default_system.startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.")


def test_phi35():
    phi = template("microsoft-Phi-3.5-mini-instruct.jinja")
    assert phi.render(CHAT) == ("<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n"
                                "<|assistant|>\nHello!<|end|>\n<|user|>\n2+2?<|end|>\n"
                                "<|assistant|>\n")
    assert phi.render(CHAT[1:2], add_generation_prompt=False).endswith("<|end|>\n</s>")


def test_gpt_oss_harmony():
    text = template("openai-gpt-oss-120b.jinja").render(CHAT, reasoning_effort="low")
    assert text.startswith("<|start|>system<|message|>You are ChatGPT")
    assert "Reasoning: low" in text and "Current date: 20" in text  # strftime_now
    assert "<|start|>developer<|message|># Instructions\n\nBe brief." in text
    assert "<|start|>assistant<|channel|>final<|message|>Hello!<|end|>" in text
    assert text.endswith("<|start|>user<|message|>2+2?<|end|><|start|>assistant")


def test_template_refusal_is_invalid_request():
    bad = [{"role": "user", "content": "Hi"},
           {"role": "assistant", "content": "<|channel|>analysis<|message|>x"}]
    with pytest.raises(InvalidRequest, match="refuses"):
        template("openai-gpt-oss-120b.jinja").render(bad)


def test_template_bug_is_invalid_request():
    with pytest.raises(InvalidRequest, match="fails"):
        ChatTemplate("{{ messages[0]['content'] + 1 }}").render([{"role": "user", "content": "x"}])


def test_broken_template_fails_at_load():
    with pytest.raises(ModelLoadError, match="chat_template"):
        ChatTemplate("{% for m in messages %}{{ m }")


def test_sandbox_blocks_attribute_escapes():
    escape = "{{ messages.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(InvalidRequest):
        ChatTemplate(escape).render([])


def test_loop_controls_and_tojson():
    source = ("{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}"
              "{{ m | tojson }}{% endfor %}")
    assert ChatTemplate(source).render([{"content": "é"}, {"content": "x"}]) == '{"content": "é"}'
