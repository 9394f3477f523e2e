"""gpt-oss's real chat template (llama.cpp's models/templates copy), rendered by our tokenizer,
gives the text and the ids of OpenAI's harmony renderer (`openai-harmony`) for the prompts a
server builds; the end-of-generation ids are those harmony stops an assistant turn at."""
from __future__ import annotations

import datetime

import pytest

harmony = pytest.importorskip("openai_harmony", reason="openai-harmony is not installed "
                              "(pip install openai-harmony)")
from openai_harmony import (Conversation, DeveloperContent, Message,  # noqa: E402
                            ReasoningEffort, Role, SystemContent)

INSTRUCTIONS = "Answer in French, briefly."


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


def test_user_prompt(harmony_tokenizer, harmony_encoding):
    check(harmony_tokenizer, harmony_encoding, [{"role": "user", "content": "What is 2+2?"}],
          [system(), user("What is 2+2?")])


def test_multi_turn_keeps_final_answers(harmony_tokenizer, harmony_encoding):
    chat = [{"role": "user", "content": "Hi!"},
            {"role": "assistant", "content": "Hello. How can I help?"},
            {"role": "user", "content": "Name a prime above 10.\n\nJust one."}]
    check(harmony_tokenizer, harmony_encoding, chat,
          [system(), user("Hi!"), assistant_final("Hello. How can I help?"), user(chat[2]["content"])])


def test_reasoning_effort_and_identity(harmony_tokenizer, harmony_encoding):
    check(harmony_tokenizer, harmony_encoding, [{"role": "user", "content": "Plan a trip."}],
          [system(ReasoningEffort.HIGH, "You are a travel agent."), user("Plan a trip.")],
          reasoning_effort="high", model_identity="You are a travel agent.")


@pytest.mark.parametrize("role", ["system", "developer"])
def test_system_or_developer_message_becomes_instructions(harmony_tokenizer, harmony_encoding, role):
    """The template writes a leading system or developer message as the developer message's
    instructions, and ends them with a blank line that harmony does not write."""
    text, _ = rendered(harmony_encoding, [system(), Message.from_role_and_content(
        Role.DEVELOPER, DeveloperContent.new().with_instructions(INSTRUCTIONS)), user("Bonjour")])
    ours = harmony_tokenizer.apply_chat_template([{"role": role, "content": INSTRUCTIONS},
                                                  {"role": "user", "content": "Bonjour"}])
    assert ours == text.replace(INSTRUCTIONS + "<|end|>", INSTRUCTIONS + "\n\n<|end|>")


def test_end_of_generation_ids(harmony_tokenizer, harmony_encoding):
    """<|return|> and <|call|> end an assistant turn; <|end|> only ends a message (the analysis
    channel's, before the final one), so it is not a stop id — harmony's stops for assistant
    actions, and llama.cpp's EOG list, which drops <|end|> for this vocabulary."""
    ids = {text: harmony_tokenizer.encode(text, add_special=False, parse_special=True)[0]
           for text in ("<|return|>", "<|call|>", "<|end|>")}
    assert set(harmony_encoding.stop_tokens_for_assistant_actions()) == {ids["<|return|>"], ids["<|call|>"]}
    assert {ids["<|return|>"], ids["<|call|>"]} <= harmony_tokenizer.eot_ids
    assert ids["<|end|>"] not in harmony_tokenizer.eot_ids
    assert ids["<|end|>"] in harmony_encoding.stop_tokens()  # harmony's stop for parsing whole messages
