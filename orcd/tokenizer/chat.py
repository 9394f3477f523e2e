"""Chat templates (`tokenizer.chat_template`) rendered as Hugging Face transformers does:
a sandboxed, immutable jinja2 environment with trim_blocks/lstrip_blocks, loop controls,
`raise_exception`, `strftime_now` and a `tojson` that keeps non-ASCII text."""
from __future__ import annotations

import datetime
import json

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orcd.errors import InvalidRequest, ModelLoadError


class TemplateError(Exception):
    """raise_exception() called by the template: the request does not fit the template."""


def _raise_exception(message):
    raise TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _strftime_now(fmt):
    return datetime.datetime.now().strftime(fmt)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


class ChatTemplate:
    def __init__(self, source: str, bos_token: str = "", eos_token: str = ""):
        try:
            self._template = _environment().from_string(source)
        except jinja2.TemplateError as e:
            raise ModelLoadError(f"tokenizer.chat_template does not compile: {e}") from e
        self.source = source
        self.bos_token, self.eos_token = bos_token, eos_token

    def render(self, messages: list[dict], add_generation_prompt: bool = True, **extra) -> str:
        try:
            return self._template.render(messages=messages,
                                         add_generation_prompt=add_generation_prompt,
                                         bos_token=self.bos_token, eos_token=self.eos_token,
                                         **extra)
        except TemplateError as e:
            raise InvalidRequest(f"messages: the model's chat template refuses them: {e}") from e
        except Exception as e:  # a template bug meets these messages
            raise InvalidRequest(f"messages: the model's chat template fails on them: "
                                 f"{type(e).__name__}: {e}") from e
