"""GPT-OSS's harmony markup (orcd/server/markup/harmony.py) read from the token text a job
streams: ids that openai-harmony renders, or that our o200k_harmony tokenizer makes of the
model's own spelling, decoded one at a time as run_job does (control tokens skipped, the
generation ended by <|call|> or <|return|>). openai-harmony's parser of the same ids is the
judge of what each message says."""
import json

import llguidance
import pytest

from orcd.engine.grammar import Grammars
from orcd.server.markup import harmony, markup_of, message_of

h = pytest.importorskip("openai_harmony", reason="openai-harmony is not installed (pip install openai-harmony)")

WEATHER = {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
THINKING = "The user asks for the weather in Paris. I should call get_weather."
# The model's own spelling of a call: the recipient after the channel, as OpenAI's harmony
# guide shows it (openai-harmony renders it in the role instead)
CALL_IN_CHANNEL = ('<|channel|>analysis<|message|>' + THINKING + '<|end|><|start|>assistant<|channel|>commentary '
                   'to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>')


def assistant(text: str, channel: str, recipient: str | None = None):
    message = h.Message.from_role_and_content(h.Role.ASSISTANT, text).with_channel(channel)
    return message.with_recipient(recipient).with_content_type("<|constrain|>json") if recipient else message


def generated(encoding, messages) -> list[int]:
    """The ids a model writes for `messages` after the prompt's closing <|start|>assistant."""
    ids = [i for m in messages for i in encoding.render(m)]
    head = encoding.encode("<|start|>assistant", allowed_special="all")
    assert ids[:len(head)] == head
    return ids[len(head):]


def streamed(tokenizer, ids) -> list[str]:
    """The text of each token event of a job generating `ids` (run_job's decoding)."""
    decoder, ends, pieces = tokenizer.stream_decoder(skip_special=True), tokenizer.eot_ids, []
    for i in ids:
        if i in ends:
            break
        pieces.append(decoder.feed(i))
    return pieces + [decoder.flush()]


def deltas_of(pieces, names) -> list[dict]:
    parser = harmony.Parser(names)
    return [d for piece in pieces for d in parser.feed(piece)] + parser.finish()


def test_the_template_picks_harmony(harmony_tokenizer):
    assert markup_of(harmony_tokenizer.chat_template.source) is harmony.MARKUP


def test_analysis_is_reasoning_and_final_is_content(harmony_tokenizer, harmony_encoding):
    messages = [assistant(THINKING, "analysis"), assistant("It is sunny in Paris.", "final")]
    ids = generated(harmony_encoding, messages)
    judged = harmony_encoding.parse_messages_from_completion_tokens(ids, h.Role.ASSISTANT)
    deltas = deltas_of(streamed(harmony_tokenizer, ids), [])
    message = message_of(deltas)
    assert message == {"role": "assistant", "content": judged[1].content[0].text,
                       "reasoning_content": judged[0].content[0].text}
    assert not any("<|" in text for d in deltas for text in d.values())  # no marker reaches a delta


def test_a_call_in_the_role_streams_its_name_then_its_arguments(harmony_tokenizer, harmony_encoding):
    """What follows <|call|> is never generated: the final message after it is cut."""
    messages = [assistant(THINKING, "analysis"), assistant('{"city": "Paris", "days": 3}', "commentary",
                                                           "functions.get_weather"),
                assistant("never generated", "final")]
    ids = generated(harmony_encoding, messages)
    judged = harmony_encoding.parse_messages_from_completion_tokens(ids, h.Role.ASSISTANT)
    deltas = deltas_of(streamed(harmony_tokenizer, ids), ["get_weather"])
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0]["function"] == {"name": "get_weather", "arguments": ""} and calls[0]["id"].startswith("call_")
    pieces = [c["function"]["arguments"] for c in calls[1:]]
    assert len(pieces) > 3 and "".join(pieces) == judged[1].content[0].text  # a piece per token
    assert judged[1].recipient == "functions.get_weather"
    message = message_of(deltas)
    assert message["content"] is None and message["reasoning_content"] == THINKING
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris", "days": 3}


def test_a_call_in_the_channel(harmony_tokenizer):
    ids = harmony_tokenizer.encode(CALL_IN_CHANNEL, add_special=False, parse_special=True)
    message = message_of(deltas_of(streamed(harmony_tokenizer, ids), ["get_weather"]))
    assert message["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert message["reasoning_content"] == THINKING and message["content"] is None


def test_what_is_no_call_is_content():
    def message(text, names=("f",)):
        return message_of(deltas_of([text], list(names)))
    preamble = "<|channel|>commentary<|message|>Let me look.<|end|><|start|>assistant"
    called = message(preamble + "<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}")
    assert called["content"] == "Let me look."
    assert called["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    no_such_tool = "<|channel|>commentary to=functions.g <|constrain|>json<|message|>{}"
    assert message(no_such_tool)["content"] == "{}"
    assert message("plain text, no header") == {"role": "assistant", "content": "plain text, no header"}
    assert message("<|channel|>final<|message|>Hi<|end|><|start|>assistant<|channel|>fin") == {
        "role": "assistant", "content": "Hi"}  # an unfinished header sends nothing


def test_text_that_may_begin_a_marker_waits():
    parser = harmony.Parser([])
    assert parser.feed("<|chan") == [] and parser.feed("nel|>final<|message|>a <|") == [{"content": "a "}]
    assert parser.feed("e") == [] and parser.feed("x") == [{"content": "<|ex"}]  # no marker after all
    assert parser.feed("<|en") == [] and parser.feed("d|>") == [] and parser.finish() == []


def test_the_required_call_grammar_holds_what_the_model_writes(harmony_tokenizer, harmony_encoding):
    """Both a call straight away and one after an analysis message pass the grammar, ending
    at <|call|>; a final answer does not."""
    grammar = harmony.MARKUP.call_grammar([WEATHER], harmony_tokenizer)
    llg_tokenizer = Grammars(harmony_tokenizer, harmony_tokenizer.vocab_size).llg_tokenizer

    def accepted(ids):
        matcher = llguidance.LLMatcher(llg_tokenizer, grammar)
        return matcher.validate_tokens(ids) == len(ids)
    encode = harmony_tokenizer.encode
    call = CALL_IN_CHANNEL[CALL_IN_CHANNEL.index("<|start|>assistant") + len("<|start|>assistant"):]
    assert accepted(encode(CALL_IN_CHANNEL, add_special=False, parse_special=True))
    assert accepted(encode(call, add_special=False, parse_special=True))
    assert not accepted(generated(harmony_encoding, [assistant("Sunny.", "final")]))
