"""GET /openapi.json: the OpenAPI 3.1 document of every route. Request bodies come from the
field definitions that validate them (schema.py, openai.py), with the running worker's
limits (max_tokens, top_k), so the document and the validation cannot drift. A stream's
schema describes one server-sent event, {event, data}, as OpenAPI 3.2's itemSchema does:
`data` is JSON text whose contentSchema is that event's payload."""
from __future__ import annotations

from orcd import __version__
from orcd.errors import CODES
from orcd.server import openai_schema
from orcd.server.fields import Limits
from orcd.server.schema import CANCEL, EXECUTE, SHUTDOWN

SSE = "text/event-stream"
JSON = "application/json"


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: dict, optional: dict | None = None) -> dict:
    """An object schema: these properties, `required` ones always present."""
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}


INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


ERROR = obj({"code": {"enum": sorted(CODES)}, "message": STR, "retriable": BOOL})
OPENAI_ERROR = obj({"error": obj({"message": STR, "type": STR, "code": STR, "param": nullable(STR)})})
EVENTS = {
    "started": obj({"job_id": STR, "model": STR, "started_at": {"type": "string", "format": "date-time"},
                    "seed": {"type": "integer", "minimum": 0}, "prompt_tokens": INT},
                   {"cached_tokens": INT}),
    "token": obj({"t": {"type": "string", "minLength": 1}, "i": {"type": "integer", "minimum": 0}}),
    "metrics": obj({"tokens_out": INT, "elapsed_ms": NUM}),
    "end": obj({"tokens_out": INT, "decode_time_ms": NUM, "prompt_tokens": INT,
                "stop_reason": {"enum": ["max_tokens", "eos", "stop"]}}),
    "error": ref("Error"),
}
HEALTH = obj({
    "status": {"enum": ["healthy", "unhealthy"]}, "worker_id": STR, "model": nullable(STR),
    "arch": nullable(STR), "resident": nullable(BOOL), "quant_kind": nullable(STR),
    "vram_bytes_used": nullable(INT), "tokenizer_kind": {"enum": ["gguf-bpe", "gguf-spm", "hf-json"]},
    "vocab_size": INT, "context_length": nullable(INT), "uptime_seconds": NUM, "busy": BOOL,
    "gpu_device": INT, "gpu_name": nullable(STR), "sm": nullable(INT),
    "cuda_runtime_version": nullable(INT), "device": nullable({"enum": ["cuda", "cpu"]})})
USAGE = obj({"prompt_tokens": INT, "completion_tokens": INT, "total_tokens": INT})
FINISH = nullable({"enum": ["length", "stop", "tool_calls"]})
COMPLETION = obj({"id": STR, "object": {"const": "text_completion"}, "created": INT, "model": STR,
                  "choices": {"type": "array", "items": obj({"index": INT, "text": STR, "finish_reason": FINISH})},
                  "usage": ref("Usage")})
CHAT_COMPLETION = obj({
    "id": STR, "object": {"const": "chat.completion"}, "created": INT, "model": STR,
    "choices": {"type": "array", "items": obj({
        "index": INT, "finish_reason": FINISH,
        "message": obj({"role": {"const": "assistant"}, "content": nullable(STR)},
                       {"reasoning_content": STR, "tool_calls": {"type": "array", "items": obj(
                           {"id": STR, "type": {"const": "function"},
                            "function": obj({"name": STR, "arguments": STR})})}})})},
    "usage": ref("Usage")})
MODELS = obj({"object": {"const": "list"}, "data": {"type": "array", "items": obj(
    {"id": STR, "object": {"const": "model"}, "created": INT, "owned_by": STR})}})


def json_response(description: str, schema: dict, headers: dict | None = None) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}, **({"headers": headers} if headers else {})}


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": INT}}


def errors(schema: dict, busy: bool) -> dict:
    """The error answers of a route; `default` covers the HTTP layer's (404, 405, 413 ...)."""
    out = {"400": json_response("INVALID_REQUEST: the message names the field", schema),
           "401": json_response("UNAUTHORIZED: --api-key is set and the request lacks it", schema,
                                {"WWW-Authenticate": {"schema": STR}})}
    if busy:
        out["503"] = json_response("WORKER_BUSY (retriable), or the worker is shutting down", schema,
                                   RETRY_AFTER)
    out["default"] = json_response("any other error, in the same shape", schema)
    return out


def body(name: str, required: bool = True) -> dict:
    return {"required": required, "content": {JSON: {"schema": ref(name)}}}


def operation(summary: str, responses: dict, request: str | None = None, optional: bool = False) -> dict:
    op = {"summary": summary, "responses": responses}
    if request:
        op["requestBody"] = body(request, not optional)
    return op


def sse_event(kind: str, payload: dict) -> dict:
    data = {"type": "string", "contentMediaType": JSON, "contentSchema": payload}
    return {"type": "object", "required": ["event", "data"],
            "properties": {"event": {"const": kind}, "data": data}}


def streamed(description: str, event: dict) -> dict:
    return {"description": description, "content": {SSE: {"schema": event}}}


OPENAI_CHUNK = {"type": "object", "required": ["data"], "properties": {"data": {
    "type": "string", "description": "a JSON chunk, an error object, or [DONE] at the end"}}}


def whole_or_streamed(schema: dict) -> dict:
    return {"description": "the completion (stream: false) or its chunks, `data: <json>` frames "
                           "ending with `data: [DONE]` (stream: true)",
            "content": {JSON: {"schema": schema}, **streamed("", OPENAI_CHUNK)["content"]}}


def paths() -> dict:
    native, v1 = (lambda busy: errors(ref("Error"), busy)), (lambda busy: errors(ref("OpenAIError"), busy))
    events = {"oneOf": [sse_event(kind, ref(f"{kind.capitalize()}Event") if kind != "error" else ref("Error"))
                        for kind in EVENTS]}
    return {
        "/execute": {"post": operation(
            "run one job; its events stream until exactly one `end` or `error`",
            {"200": streamed("started, token*, then end or error", events), **native(True)},
            "ExecuteRequest")},
        "/cancel": {"post": operation(
            "stop a job (idempotent; an unknown or finished id is accepted too)",
            {"202": json_response("accepted", obj({"job_id": STR, "status": {"const": "accepted"}})),
             **native(False)}, "CancelRequest")},
        "/health": {"get": {**operation("the worker's state, from cache", {
            "200": json_response("the worker's state", ref("Health"))}), "security": [{}]}},
        "/metrics": {"get": {**operation("Prometheus text", {"200": {
            "description": "Prometheus exposition format 0.0.4",
            "content": {"text/plain": {"schema": STR}}}}), "security": [{}]}},
        "/shutdown": {"post": operation(
            "finish or cancel the running job, free the GPU and exit 0 (application/json only)",
            {"202": json_response("shutting down", obj({"status": STR})), **native(False)},
            "ShutdownRequest", optional=True)},
        "/openapi.json": {"get": operation("this document", {
            "200": json_response("OpenAPI 3.1", {"type": "object"}), **native(False)})},
        "/v1/models": {"get": operation("the one model served", {
            "200": json_response("OpenAI's model list", MODELS), **v1(False)})},
        "/v1/models/{model_id}": {"get": {**operation("the model served, by its id (404 for another)", {
            "200": json_response("OpenAI's model card", MODELS["properties"]["data"]["items"]), **v1(False)}),
            "parameters": [{"name": "model_id", "in": "path", "required": True, "schema": STR}]}},
        "/v1/completions": {"post": operation("OpenAI completions", {
            "200": whole_or_streamed(ref("Completion")), **v1(True)}, "CompletionRequest")},
        "/v1/chat/completions": {"post": operation("OpenAI chat completions through the GGUF's chat template", {
            "200": whole_or_streamed(ref("ChatCompletion")), **v1(True)}, "ChatCompletionRequest")},
    }


def document(limits: Limits) -> dict:
    schemas = {body.name: body.schema(limits)
               for body in (EXECUTE, CANCEL, SHUTDOWN, openai_schema.COMPLETIONS, openai_schema.CHAT)}
    schemas.update({f"{kind.capitalize()}Event": schema for kind, schema in EVENTS.items() if kind != "error"})
    schemas.update(Error=ERROR, OpenAIError=OPENAI_ERROR, Health=HEALTH, Usage=USAGE,
                   Completion=COMPLETION, ChatCompletion=CHAT_COMPLETION)
    return {
        "openapi": "3.1.0",
        "info": {"title": "orcd worker", "version": __version__,
                 "description": "One GGUF model on one GPU, tokens over server-sent events. "
                                "Errors: {code, message, retriable}; under /v1, OpenAI's shape."},
        "paths": paths(),
        "components": {"schemas": schemas,
                       "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                                      "description": "only when the worker runs with --api-key"}}},
        "security": [{}, {"apiKey": []}],
    }
