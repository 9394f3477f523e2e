"""What a chat model writes around its answer, parsed into OpenAI chat deltas as it streams:
one parser per markup, the markup chosen by the GGUF's chat template (markup_of).

    hermes.py    Qwen2.5's <tool_call>{"name", "arguments"}</tool_call>
    harmony.py   GPT-OSS's harmony messages: analysis -> reasoning_content, final -> content,
                 commentary to=functions.NAME -> a tool call

A parser turns each piece of streamed text into the deltas OpenAI's stream chunks carry:
{"content"}, {"reasoning_content"} (llama-server's name for a model's reasoning), a call's
opening {"tool_calls": [{"index", "id", "type", "function": {"name", "arguments": ""}}]}, then
{"tool_calls": [{"index", "function": {"arguments": piece}}]} as its arguments arrive. A whole
answer is the same deltas folded (message_of), so streamed and whole answers cannot differ.

A markup is an object with
    renders_tools(template_source) -> bool   the template writes `tools` into the prompt
    parser(tool_names) -> Parser             feed(text) -> deltas; finish() -> deltas
    call_grammar(functions, tokenizer) -> str
                                             the Lark grammar of one call of one of
                                             `functions` (tool_choice required or named)
"""
from __future__ import annotations

from orcd.server.markup import harmony, hermes
from orcd.server.markup.deltas import Plain, message_of


def markup_of(template_source: str | None):
    """The markup the template teaches the model, or None (plain text)."""
    if template_source is None:
        return None
    if harmony.CHANNEL in template_source:
        return harmony.MARKUP
    if hermes.OPEN in template_source:
        return hermes.MARKUP
    return None


def parser_of(markup, tool_names: list[str] | None):
    return markup.parser(tool_names or []) if markup is not None else Plain()


def parse(parser, text: str) -> dict:
    """The message of a whole answer."""
    return message_of(parser.feed(text) + parser.finish())
