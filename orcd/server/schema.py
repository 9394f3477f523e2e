"""The /execute request (SPEC §2): types and the request-level limits are checked here;
the sampling ranges are SamplingParams.validate's, so each range is written once."""
from __future__ import annotations

import dataclasses
import json
import math
import secrets

from orcd.engine.grammar import json_schema_grammar
from orcd.engine.logprobs import MAX_TOP_LOGPROBS, Scoring
from orcd.engine.sampling import SamplingParams
from orcd.errors import InvalidRequest, invalid

MAX_BODY_BYTES = 1 << 20
MAX_JOB_ID_CHARS = 256
MAX_PROMPT_CHARS = 32768
MAX_TOKENS_LIMIT = 2048
MAX_STOP_STRINGS = 4
MAX_STOP_CHARS = 256
UINT64_MAX = (1 << 64) - 1

FLOAT_FIELDS = ("temperature", "top_p", "min_p", "repetition_penalty")
FIELDS = frozenset({"job_id", "prompt", "max_tokens", "top_k", "stop", "seed", "cache_prompt",
                    "logprobs", "json_schema", *FLOAT_FIELDS})


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    """What the engine needs for one job, whichever endpoint it came through."""
    job_id: str
    prompt: str
    max_tokens: int
    stop: tuple[str, ...]
    params: SamplingParams
    cache_prompt: bool = True  # reuse the KV rows of the prefix shared with the previous job
    logprobs: int | None = None      # alternatives per token (0..20); None: no logprobs
    prompt_logprobs: bool = False    # also score the prompt's tokens (echo)
    grammar: str | None = None       # an llguidance grammar the output must match

    def scoring(self) -> Scoring | None:
        if self.logprobs is None:
            return None
        return Scoring(top_n=self.logprobs, with_prompt=self.prompt_logprobs)


def parse_json_body(body: bytes, content_type: str | None) -> dict:
    """The body as a JSON object, or INVALID_REQUEST naming what is wrong with it."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime != "application/json":
        raise invalid("Content-Type", f"must be application/json, got {content_type or 'none'!r}")
    if len(body) > MAX_BODY_BYTES:
        raise invalid("body", f"larger than {MAX_BODY_BYTES} bytes")
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as e:
        raise invalid("body", f"not valid UTF-8 at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise invalid("body", f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(value, dict):
        raise invalid("body", f"must be a JSON object, got {type(value).__name__}")
    return value


def _reject_constant(name: str):
    raise invalid("body", f"{name} is not JSON")


def parse_execute(body: dict, vocab_size: int, max_tokens_out: int) -> GenerationRequest:
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise invalid(unknown[0], "unknown field")
    return GenerationRequest(
        job_id=text_field(body, "job_id", MAX_JOB_ID_CHARS),
        prompt=text_field(body, "prompt", MAX_PROMPT_CHARS),
        max_tokens=max_tokens_field(body, "max_tokens", max_tokens_out, default=max_tokens_out),
        stop=stop_field(body, "stop"),
        params=sampling_params(body, vocab_size),
        cache_prompt=bool_field(body, "cache_prompt", True),
        logprobs=logprobs_field(body, "logprobs"),
        grammar=grammar_field(body, "json_schema"))


def text_field(body: dict, field: str, max_chars: int) -> str:
    if field not in body:
        raise invalid(field, "required")
    value = body[field]
    if not isinstance(value, str):
        raise invalid(field, f"must be a string, got {json_type(value)}")
    if not value:
        raise invalid(field, "must not be empty")
    if len(value) > max_chars:
        raise invalid(field, f"longer than {max_chars} characters ({len(value)})")
    return value


def max_tokens_field(body: dict, field: str, max_tokens_out: int, default: int) -> int:
    limit = min(MAX_TOKENS_LIMIT, max_tokens_out)
    value = int_field(body, field, min(default, limit))
    if not 1 <= value <= limit:
        raise invalid(field, f"must be in 1..{limit}, got {value}")
    return value


def logprobs_field(body: dict, field: str) -> int | None:
    """How many alternatives each token's logprob entry lists; absent or null: no logprobs."""
    value = int_field(body, field, None) if body.get(field) is not None else None
    if value is not None and not 0 <= value <= MAX_TOP_LOGPROBS:
        raise invalid(field, f"must be in 0..{MAX_TOP_LOGPROBS}, got {value}")
    return value


def grammar_field(body: dict, field: str) -> str | None:
    """The grammar of the JSON schema every output must validate against; absent or null: none."""
    return json_schema_grammar(body[field], field) if body.get(field) is not None else None


def stop_field(body: dict, field: str) -> tuple[str, ...]:
    value = body.get(field, [])
    if not isinstance(value, list):
        raise invalid(field, f"must be a list of strings, got {json_type(value)}")
    if len(value) > MAX_STOP_STRINGS:
        raise invalid(field, f"at most {MAX_STOP_STRINGS} strings, got {len(value)}")
    for s in value:
        if not isinstance(s, str) or not s:
            raise invalid(field, "every entry must be a non-empty string")
        if len(s) > MAX_STOP_CHARS:
            raise invalid(field, f"an entry is longer than {MAX_STOP_CHARS} characters")
    return tuple(value)


def sampling_params(body: dict, vocab_size: int) -> SamplingParams:
    defaults = SamplingParams(seed=0)
    floats = {f: float_field(body, f, getattr(defaults, f)) for f in FLOAT_FIELDS}
    seed = int_field(body, "seed", None)
    if seed is None:
        seed = secrets.randbits(64)
    elif not 0 <= seed <= UINT64_MAX:
        raise invalid("seed", f"must be a uint64 (0..{UINT64_MAX}), got {seed}")
    params = SamplingParams(top_k=int_field(body, "top_k", defaults.top_k), seed=seed, **floats)
    try:
        return params.validate(vocab_size)
    except InvalidRequest as e:  # its message starts with the field it names
        e.field = str(e).split(" ", 1)[0]
        raise


def int_field(body: dict, field: str, default):
    if field not in body:
        return default
    value = body[field]
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, f"must be an integer, got {json_type(value)}")
    return value


def bool_field(body: dict, field: str, default: bool) -> bool:
    value = body.get(field, default)
    if not isinstance(value, bool):
        raise invalid(field, f"must be a boolean, got {json_type(value)}")
    return value


def float_field(body: dict, field: str, default: float) -> float:
    if field not in body:
        return default
    value = body[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(field, f"must be a number, got {json_type(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise invalid(field, "must be finite")
    return value


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
