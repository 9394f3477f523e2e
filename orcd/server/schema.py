"""The bodies of /execute, /cancel and /shutdown (SPEC §2), each defined once from the field
kinds of orcd/server/fields.py: the same objects validate requests and write their part of
/openapi.json. The sampling ranges are orcd/engine/sampling.py's RANGES."""
from __future__ import annotations

import dataclasses
import json
import secrets

from orcd.engine.grammar import json_schema_grammar
from orcd.engine.logprobs import MAX_TOP_LOGPROBS, Scoring
from orcd.engine.sampling import RANGES, SamplingParams
from orcd.errors import invalid
from orcd.server.fields import Body, Boolean, Integer, JsonObject, Limits, Number, Text, TextList, json_type

MAX_BODY_BYTES = 1 << 20
MAX_JOB_ID_CHARS = 256
MAX_PROMPT_CHARS = 32768
MAX_TOKENS_LIMIT = 2048
# JSON allows integer literals of any length; Python converts them in quadratic time and
# refuses beyond 4300 digits. The API's integers are uint64 at most (20 digits).
MAX_INTEGER_DIGITS = 100


def max_tokens_limit(limits: Limits) -> int:
    return min(MAX_TOKENS_LIMIT, limits.max_tokens_out)


JOB_ID = Text("job_id", "the caller's id of the job; /cancel takes it", max_chars=MAX_JOB_ID_CHARS,
              required=True)
SAMPLING = (
    Number("temperature", "0 = greedy argmax", range=RANGES["temperature"], fallback=1.0),
    Number("top_p", "nucleus sampling; 1 = off", range=RANGES["top_p"], fallback=1.0),
    Integer("top_k", "keep the k most likely tokens; 0 = off", low=0, high=lambda lim: lim.vocab_size,
            fallback=0),
    Number("min_p", "keep tokens at least min_p times the most likely; 0 = off",
           range=RANGES["min_p"], fallback=0.0),
    Number("repetition_penalty", "CTRL's penalty on every token seen; 1 = off",
           range=RANGES["repetition_penalty"], fallback=1.0),
    Integer("seed", "uint64; generated when absent and reported in `started`"),
)
SKIP_SPECIAL = Boolean("skip_special_tokens", "leave the text of control tokens (e.g. <|im_start|>) "
                       "out of the streamed text, as llama-server and vLLM do", fallback=True)
CACHE_PROMPT = Boolean("cache_prompt", "reuse the KV cache of the longest prefix shared with the "
                       "previous job's tokens", fallback=True)
EXECUTE = Body("ExecuteRequest", (
    JOB_ID,
    Text("prompt", "raw text, sent to the model as is; special-token text is that token",
         max_chars=MAX_PROMPT_CHARS, required=True),
    Integer("max_tokens", "most tokens to generate", low=1, high=max_tokens_limit, fallback=max_tokens_limit),
    *SAMPLING,
    TextList("stop", "strings that end the generation, matched on the generated text; the "
             "match is not sent"),
    SKIP_SPECIAL,
    CACHE_PROMPT,
    Integer("logprobs", "alternatives listed with each token's logprob; absent or null: none",
            low=0, high=MAX_TOP_LOGPROBS, nullable=True),
    JsonObject("json_schema", "a JSON Schema every output must validate against (held token by token)",
               nullable=True),
))
CANCEL = Body("CancelRequest", (JOB_ID,))
SHUTDOWN = Body("ShutdownRequest", ())


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    """What the engine needs for one job, whichever endpoint it came through."""
    job_id: str
    prompt: str
    max_tokens: int
    stop: tuple[str, ...]
    params: SamplingParams
    skip_special: bool = True
    cache_prompt: bool = True  # reuse the KV rows of the prefix shared with the previous job
    logprobs: int | None = None      # alternatives per token (0..20); None: no logprobs
    prompt_logprobs: bool = False    # also score the prompt's tokens (echo)
    grammar: str | None = None       # an llguidance grammar the output must match

    def scoring(self) -> Scoring | None:
        if self.logprobs is None:
            return None
        return Scoring(top_n=self.logprobs, with_prompt=self.prompt_logprobs)


def parse_json_body(body: bytes, content_type: str | None, allow_empty: bool = False) -> dict:
    """The body as a JSON object, or INVALID_REQUEST naming what is wrong with it. An empty
    body reads as {} where `allow_empty` (a route without fields)."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime != "application/json":
        raise invalid("Content-Type", f"must be application/json, got {content_type or 'none'!r}")
    if len(body) > MAX_BODY_BYTES:
        raise invalid("body", f"larger than {MAX_BODY_BYTES} bytes")
    if allow_empty and not body.strip():
        return {}
    try:
        value = _loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise invalid("body", f"not valid UTF-8 at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise invalid("body", f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise invalid("body", "JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise invalid("body", f"must be a JSON object, got {json_type(value)}")
    return value


def _loads(text: str):
    """json.loads(text) with DECODER, made once rather than per request as json.loads does
    when given hooks."""
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return DECODER.decode(text)


def _reject_constant(name: str):
    raise invalid("body", f"{name} is not JSON")


def _integer(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise invalid("body", f"an integer literal of {len(literal.lstrip('-'))} digits; "
                              f"the API's integers have at most 20")
    return int(literal)


DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_integer)


def parse_execute(body: dict, limits: Limits) -> GenerationRequest:
    v = EXECUTE.parse(body, limits)
    return GenerationRequest(job_id=v["job_id"], prompt=v["prompt"], max_tokens=v["max_tokens"],
                             stop=v["stop"], params=sampling_params(v, limits),
                             skip_special=v["skip_special_tokens"], cache_prompt=v["cache_prompt"],
                             logprobs=v["logprobs"], grammar=grammar_of(v["json_schema"], "json_schema"))


def grammar_of(schema: dict | None, field: str) -> str | None:
    """The grammar of a JSON schema every output must validate against; None: none."""
    return json_schema_grammar(schema, field) if schema is not None else None


def sampling_params(values: dict, limits: Limits) -> SamplingParams:
    """SamplingParams from parsed SAMPLING values (already in range); a seed is drawn when
    none was given."""
    seed = values["seed"] if values["seed"] is not None else secrets.randbits(64)
    return SamplingParams(temperature=values["temperature"], top_p=values["top_p"],
                          top_k=values["top_k"], min_p=values["min_p"],
                          repetition_penalty=values["repetition_penalty"], seed=seed)
