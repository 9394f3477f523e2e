"""gpt-oss's real chat template (llama.cpp's models/templates copy), rendered by our tokenizer,
gives the text and the ids of OpenAI's harmony renderer (`openai-harmony`) for the prompts a
server builds; the end-of-generation ids are those harmony stops an assistant turn at."""
from __future__ import annotations

import datetime
from pathlib import Path

import pytest

import orcd.tokenizer
from orcd.testing import o200k

harmony = pytest.importorskip("openai_harmony", reason="openai-harmony is not installed "
                              "(pip install openai-harmony)")
from openai_harmony import (Conversation, DeveloperContent, HarmonyEncodingName,  # noqa: E402
                            Message, ReasoningEffort, Role, SystemContent,
                            load_harmony_encoding)

TEMPLATE = Path(__file__).with_name("templates") / "openai-gpt-oss-120b.jinja"
INSTRUCTIONS = "Answer in French, briefly."


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    try:
        o200k.tiktoken_file()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    path = tmp_path_factory.mktemp("harmony") / "o200k_harmony.gguf"
    return orcd.tokenizer.load(o200k.write_vocab_gguf(path, TEMPLATE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def encoding(tmp_path_factory):
    """harmony's GPT-OSS encoding, reading o200k_base.tiktoken offline."""
    folder = tmp_path_factory.mktemp("encodings")
    (folder / "o200k_base.tiktoken").write_bytes(o200k.tiktoken_file())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIKTOKEN_ENCODINGS_BASE", str(folder))
        yield load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)


def system(effort=ReasoningEffort.MEDIUM, identity=None) -> Message:
    """The system message the template always writes: today's date, medium effort."""
    content = (SystemContent.new().with_conversation_start_date(datetime.date.today().isoformat())
               .with_reasoning_effort(effort))
    if identity:
        content = content.with_model_identity(identity)
    return Message.from_role_and_content(Role.SYSTEM, content)


def user(text: str) -> Message:
    return Message.from_role_and_content(Role.USER, text)


def assistant_final(text: str) -> Message:
    return Message.from_role_and_content(Role.ASSISTANT, text).with_channel("final")


def rendered(encoding, messages) -> tuple[str, list[int]]:
    conversation = Conversation.from_messages(messages)
    ids = encoding.render_conversation_for_completion(conversation, Role.ASSISTANT)
    return encoding.decode_utf8(ids), list(ids)


def check(tokenizer, encoding, chat, messages, **extra) -> None:
    text, ids = rendered(encoding, messages)
    ours = tokenizer.apply_chat_template(chat, add_generation_prompt=True, **extra)
    assert ours == text
    assert ours.endswith("<|start|>assistant")
    assert tokenizer.encode(ours, add_special=False, parse_special=True) == ids


def test_user_prompt(tokenizer, encoding):
    check(tokenizer, encoding, [{"role": "user", "content": "What is 2+2?"}],
          [system(), user("What is 2+2?")])


def test_multi_turn_keeps_final_answers(tokenizer, encoding):
    chat = [{"role": "user", "content": "Hi!"},
            {"role": "assistant", "content": "Hello. How can I help?"},
            {"role": "user", "content": "Name a prime above 10.\n\nJust one."}]
    check(tokenizer, encoding, chat, [system(), user("Hi!"), assistant_final("Hello. How can I help?"),
                                      user(chat[2]["content"])])


def test_reasoning_effort_and_identity(tokenizer, encoding):
    check(tokenizer, encoding, [{"role": "user", "content": "Plan a trip."}],
          [system(ReasoningEffort.HIGH, "You are a travel agent."), user("Plan a trip.")],
          reasoning_effort="high", model_identity="You are a travel agent.")


@pytest.mark.parametrize("role", ["system", "developer"])
def test_system_or_developer_message_becomes_instructions(tokenizer, encoding, role):
    """The template writes a leading system or developer message as the developer message's
    instructions, and ends them with a blank line that harmony does not write."""
    text, _ = rendered(encoding, [system(), Message.from_role_and_content(
        Role.DEVELOPER, DeveloperContent.new().with_instructions(INSTRUCTIONS)), user("Bonjour")])
    ours = tokenizer.apply_chat_template([{"role": role, "content": INSTRUCTIONS},
                                          {"role": "user", "content": "Bonjour"}])
    assert ours == text.replace(INSTRUCTIONS + "<|end|>", INSTRUCTIONS + "\n\n<|end|>")


def test_end_of_generation_ids(tokenizer, encoding):
    """<|return|> and <|call|> end an assistant turn; <|end|> only ends a message (the analysis
    channel's, before the final one), so it is not a stop id — harmony's stops for assistant
    actions, and llama.cpp's EOG list, which drops <|end|> for this vocabulary."""
    ids = {text: tokenizer.encode(text, add_special=False, parse_special=True)[0]
           for text in ("<|return|>", "<|call|>", "<|end|>")}
    assert set(encoding.stop_tokens_for_assistant_actions()) == {ids["<|return|>"], ids["<|call|>"]}
    assert {ids["<|return|>"], ids["<|call|>"]} <= tokenizer.eot_ids
    assert ids["<|end|>"] not in tokenizer.eot_ids
    assert ids["<|end|>"] in encoding.stop_tokens()  # harmony's stop for parsing whole messages
