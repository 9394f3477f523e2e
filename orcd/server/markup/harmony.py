"""GPT-OSS's harmony format (OpenAI's openai-harmony; llama.cpp's common_chat_parse_gpt_oss
reads it the same way). After the prompt's `<|start|>assistant` the model writes messages
    <|channel|>analysis<|message|>...reasoning...<|end|>
    <|start|>assistant<|channel|>final<|message|>...the answer...             (then <|return|>)
    <|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{...}
                                                                               (then <|call|>)
The recipient may also stand in the role (`<|start|>assistant to=functions.NAME<|channel|>
commentary json<|message|>`). The analysis channel becomes reasoning_content, never content;
final and commentary without a recipient (a preamble to the user) are content; a message to
functions.NAME of one of the tools is a call whose arguments stream as they come.
<|return|> and <|call|> end the generation (they are end-of-generation ids of the vocabulary,
orcd/tokenizer/vocab.py), so neither reaches the text; the other markers are rendered there.
"""
from __future__ import annotations

import json
import re

from orcd.engine.grammar import JSON_OPTIONS, lark_grammar
from orcd.server.markup.deltas import StateParser, call_arguments, call_opened, held_back
from orcd.server.markup.lark import token

START, CHANNEL, MESSAGE, END, CONSTRAIN = "<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|constrain|>"
# what a generation opens with when it opens with a header: the prompt ends <|start|>assistant
HEADER_OPENINGS = (CHANNEL, START, " to=")
BODY_ENDS = (END, START, CHANNEL)  # a body ends at <|end|>; a new header also ends it
RECIPIENT = re.compile(r"to=functions\.([^<\s]+)")
CHANNEL_NAME = re.compile(re.escape(CHANNEL) + r"\s*(\w+)")


class Harmony:
    def renders_tools(self, template_source: str) -> bool:
        return "tools" in template_source

    def parser(self, tool_names: list[str]):
        return Parser(tool_names)

    def call_grammar(self, functions: list[dict], tokenizer) -> str:
        """Maybe one analysis message, then a commentary message to one of the functions, its
        arguments following the function's parameters schema. The grammar cannot name <|call|>:
        llguidance keeps end-of-generation ids for the grammar's end, where it allows only them
        (the model writes <|call|> there; another end id ends the call as well)."""
        def t(text):
            return token(text, tokenizer)
        lines = [f"start: analysis? ({' | '.join(f'call_{i}' for i in range(len(functions)))})",
                 f"analysis: {t(CHANNEL)} \"analysis\" {t(MESSAGE)} REASONING {t(END)} {t(START)} \"assistant\"",
                 "REASONING: /(?s:.*)/"]
        for i, f in enumerate(functions):
            schema = {**(f.get("parameters") or {"type": "object"}), "x-guidance": JSON_OPTIONS}
            lines += [f"call_{i}: {t(CHANNEL)} \"commentary to=functions.{f['name']} \" {t(CONSTRAIN)} \"json\" "
                      f"{t(MESSAGE)} arguments_{i}",
                      f"arguments_{i}: %json {json.dumps(schema)}"]
        return lark_grammar("\n".join(lines) + "\n", "tools")


MARKUP = Harmony()


class Parser(StateParser):
    """States: opening (the first characters, which say whether a header comes), header (up to
    <|message|>), body (of kind content, reasoning_content or a call's index)."""

    def __init__(self, names: list[str]):
        super().__init__(names, "opening")
        self.kind: str | int = "content"

    def finish(self) -> list[dict]:
        """An unfinished header is markup without a message: nothing of it is sent."""
        out = self.feed("")
        if self.state != "header":
            self.body(out, self.buf)
        self.buf = ""
        return out

    def body(self, out: list[dict], text: str) -> None:
        if text:
            out.append(call_arguments(self.kind, text) if isinstance(self.kind, int) else {self.kind: text})

    def _opening(self, out) -> bool:
        if self.buf.startswith(HEADER_OPENINGS):
            self.state = "header"
            return True
        if any(o.startswith(self.buf) for o in HEADER_OPENINGS):
            return False
        self.state = "body"  # text without a header: content
        return True

    def _header(self, out) -> bool:
        at = self.buf.find(MESSAGE)
        if at < 0:
            return False
        header, self.buf = self.buf[:at], self.buf[at + len(MESSAGE):]
        recipient, channel = RECIPIENT.search(header), CHANNEL_NAME.search(header)
        if recipient is not None and recipient.group(1) in self.names:
            out.append(call_opened(self.calls, recipient.group(1)))
            self.kind = self.calls
            self.calls += 1
        elif channel is not None and channel.group(1) == "analysis" and recipient is None:
            self.kind = "reasoning_content"
        else:
            self.kind = "content"
        self.state = "body"
        return True

    def _body(self, out) -> bool:
        ends = [(at, marker) for marker in BODY_ENDS if (at := self.buf.find(marker)) >= 0]
        if ends:
            at, marker = min(ends)
            self.body(out, self.buf[:at])
            self.buf = self.buf[at + len(END):] if marker == END else self.buf[at:]
            self.state = "header"
            return True
        keep = held_back(self.buf, BODY_ENDS)
        self.body(out, self.buf[:len(self.buf) - keep])
        self.buf = self.buf[len(self.buf) - keep:]
        return False
