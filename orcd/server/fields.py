"""Request fields written once: each kind checks a JSON value and describes itself as JSON
Schema, so a route's validation and its part of /openapi.json (orcd/server/openapi.py) come
from the same object and cannot drift. Every rejection is INVALID_REQUEST whose message
starts with the field it names."""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Callable

from orcd.engine.sampling import Range
from orcd.errors import invalid

UINT64_MAX = (1 << 64) - 1


@dataclasses.dataclass(frozen=True)
class Limits:
    """What the running worker decides: the vocabulary (top_k's range) and --max-tokens-out."""
    vocab_size: int
    max_tokens_out: int


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    description: str
    required: bool = dataclasses.field(default=False, kw_only=True)
    nullable: bool = dataclasses.field(default=False, kw_only=True)  # null reads as absent (OpenAI)

    def parse(self, body: dict, limits: Limits):
        if self.name not in body or (self.nullable and body[self.name] is None):
            if self.required:
                raise invalid(self.name, "required")
            return self.default(limits)
        return self.check(body[self.name], limits)

    def document(self, limits: Limits) -> dict:
        schema = self.schema(limits)
        if self.nullable and schema.get("type") != "null":
            schema = ({**schema, "type": [schema["type"], "null"]} if isinstance(schema.get("type"), str)
                      else {"anyOf": [schema, {"type": "null"}]})
        default = None if self.required else self.default(limits)
        if isinstance(default, tuple):
            default = list(default)
        return {**schema, "description": self.description,
                **({"default": default} if default is not None else {})}

    def default(self, limits: Limits):
        return None

    def check(self, value, limits: Limits):
        raise NotImplementedError

    def schema(self, limits: Limits) -> dict:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Text(Field):
    """A string of min_chars..max_chars code points; never a lone surrogate (JSON allows
    "\\ud800", but it has no UTF-8 form, so it could not be echoed or tokenized as sent)."""
    max_chars: int = 256
    min_chars: int = 1

    def check(self, value, limits):
        return check_text(self.name, value, self.max_chars, self.min_chars)

    def schema(self, limits):
        return text_schema(self.max_chars, self.min_chars)


def check_text(name: str, value, max_chars: int, min_chars: int = 1) -> str:
    if not isinstance(value, str):
        raise invalid(name, f"must be a string, got {json_type(value)}")
    if len(value) < min_chars:
        raise invalid(name, "must not be empty")
    if len(value) > max_chars:
        raise invalid(name, f"longer than {max_chars} characters ({len(value)})")
    if value.isascii():  # str knows it without a look: no surrogate, nothing to encode
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise invalid(name, f"holds a lone surrogate (\\u{ord(value[e.start]):04x}) at character "
                            f"{e.start}, which is not a Unicode character") from None
    return value


def text_schema(max_chars: int, min_chars: int = 1) -> dict:
    return {"type": "string", "minLength": min_chars, "maxLength": max_chars}


@dataclasses.dataclass(frozen=True)
class Integer(Field):
    """An integer in low..high; high and the default may depend on the worker's limits."""
    low: int = 0
    high: int | Callable[[Limits], int] = UINT64_MAX
    fallback: int | Callable[[Limits], int] | None = None

    def _high(self, limits):
        return self.high(limits) if callable(self.high) else self.high

    def default(self, limits):
        return self.fallback(limits) if callable(self.fallback) else self.fallback

    def check(self, value, limits):
        # JSON does not tell 2 from 2.0, nor does JSON Schema's "integer": both are 2. Beyond
        # 2**53 a float is no longer exact, so there only integer literals count.
        if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(self.name, f"must be an integer, got {json_type(value)}")
        if not self.low <= value <= self._high(limits):
            raise invalid(self.name, f"must be in {self.low}..{self._high(limits)}, got {shown(value)}")
        return value

    def schema(self, limits):
        return {"type": "integer", "minimum": self.low, "maximum": self._high(limits)}


@dataclasses.dataclass(frozen=True)
class Number(Field):
    """A finite number in a sampling Range (orcd/engine/sampling.py holds the ranges)."""
    range: Range = Range(0.0, 1.0)
    fallback: float = 0.0

    def default(self, limits):
        return self.fallback

    def check(self, value, limits):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise invalid(self.name, f"must be a number, got {json_type(value)}")
        value = float(value)  # cannot overflow: parse_json_body bounds integer literals
        if not math.isfinite(value):
            raise invalid(self.name, "must be finite")
        if value not in self.range:
            raise invalid(self.name, f"must be in {self.range}, got {value!r}")
        return value

    def schema(self, limits):
        low = "exclusiveMinimum" if self.range.low_open else "minimum"
        return {"type": "number", low: self.range.low, "maximum": self.range.high}


@dataclasses.dataclass(frozen=True)
class Boolean(Field):
    fallback: bool = False

    def default(self, limits):
        return self.fallback

    def check(self, value, limits):
        if not isinstance(value, bool):
            raise invalid(self.name, f"must be a boolean, got {json_type(value)}")
        return value

    def schema(self, limits):
        return {"type": "boolean"}


@dataclasses.dataclass(frozen=True)
class TextList(Field):
    """Up to max_items non-empty strings (stop sequences); with `one_or_list` a lone string
    stands for a list of one, as OpenAI's `stop` allows."""
    max_items: int = 4
    max_chars: int = 256
    one_or_list: bool = False

    def default(self, limits):
        return ()

    def check(self, value, limits):
        if self.one_or_list and isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise invalid(self.name, f"must be a list of strings, got {json_type(value)}")
        if len(value) > self.max_items:
            raise invalid(self.name, f"at most {self.max_items} strings, got {len(value)}")
        for item in value:
            if not isinstance(item, str) or not item:
                raise invalid(self.name, "every entry must be a non-empty string")
            check_text(self.name, item, self.max_chars)
        return tuple(value)

    def schema(self, limits):
        items = {"type": "array", "items": text_schema(self.max_chars), "maxItems": self.max_items}
        return {"anyOf": [text_schema(self.max_chars), items]} if self.one_or_list else items


@dataclasses.dataclass(frozen=True)
class Neutral(Field):
    """An OpenAI option orcd does not implement, accepted only at the value that means
    "off", so a client never gets a silent approximation."""
    value: object = None

    def check(self, value, limits):
        if value != self.value or isinstance(value, bool) != isinstance(self.value, bool):
            raise invalid(self.name, f"only {json.dumps(self.value)} is supported")
        return value

    def schema(self, limits):
        if self.value is None:
            return {"type": "null"}
        if isinstance(self.value, dict):
            return {"type": "object", "maxProperties": 0}
        return {"enum": [self.value]}


@dataclasses.dataclass(frozen=True)
class JsonObject(Field):
    """Any JSON object (a JSON Schema, a response_format): its content is checked where it is
    used (orcd/engine/grammar.py, orcd/server/tools.py), which names what is wrong."""

    def check(self, value, limits):
        if not isinstance(value, dict):
            raise invalid(self.name, f"must be an object, got {json_type(value)}")
        return value

    def schema(self, limits):
        return {"type": "object"}


@dataclasses.dataclass(frozen=True)
class JsonArray(Field):
    """Any JSON array of objects (tools): its entries are checked where they are used."""

    def check(self, value, limits):
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise invalid(self.name, "must be a list of objects")
        return value

    def schema(self, limits):
        return {"type": "array", "items": {"type": "object"}}


@dataclasses.dataclass(frozen=True)
class Object(Field):
    """A nested object of its own fields."""
    body: Body | None = None

    def default(self, limits):
        return self.body.parse({}, limits)

    def check(self, value, limits):
        if not isinstance(value, dict):
            raise invalid(self.name, f"must be an object, got {json_type(value)}")
        return self.body.parse(value, limits)

    def schema(self, limits):
        return self.body.schema(limits)


@dataclasses.dataclass(frozen=True)
class Body:
    """A request body: a JSON object of these fields and no others."""
    name: str
    fields: tuple[Field, ...]
    unknown: str = "unknown field"
    # per Limits: the defaults, made once, and the fields whose default is a fresh dict
    _defaults: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    def parse(self, body: dict, limits: Limits) -> dict:
        """Field.parse of every field, in their order (the first wrong one is named), with the
        defaults made once per Limits: a request names a few of the thirty-odd fields, and
        this runs on the event loop before its job can start."""
        names, defaults, fresh = self._defaults_for(limits)
        extra = body.keys() - names
        if extra:
            raise invalid(sorted(extra)[0], self.unknown)
        values = dict(defaults)
        for f in fresh:
            values[f.name] = f.default(limits)
        for f in self.fields:
            if f.name in body:
                values[f.name] = f.parse(body, limits)
            elif f.required:
                raise invalid(f.name, "required")
        return values

    def _defaults_for(self, limits: Limits) -> tuple[frozenset, dict, tuple[Field, ...]]:
        cached = self._defaults.get(limits)
        if cached is None:
            defaults = {f.name: f.default(limits) for f in self.fields}
            cached = self._defaults[limits] = (frozenset(defaults), defaults, tuple(
                f for f in self.fields if isinstance(defaults[f.name], dict)))
        return cached

    def schema(self, limits: Limits) -> dict:
        required = [f.name for f in self.fields if f.required]
        return {"type": "object", "additionalProperties": False,
                "properties": {f.name: f.document(limits) for f in self.fields},
                **({"required": required} if required else {})}


def shown(value: int) -> str:
    """An integer for a message, abbreviated when long: messages stay short."""
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} digits)"


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
