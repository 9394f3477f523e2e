"""/openapi.json: a valid OpenAPI 3.1 document of every route, whose request schemas are the
validation itself (anything a schema allows is accepted) and whose event schemas describe
the frames a real stream sends."""
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# The judges (the test extras install them; the GPU box has none of them).
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a judge (pip install jsonschema)")
from_schema = pytest.importorskip("hypothesis_jsonschema", reason="hypothesis-jsonschema is a judge "
                                  "(pip install hypothesis-jsonschema)").from_schema
validate = pytest.importorskip("openapi_spec_validator", reason="openapi-spec-validator is a judge "
                               "(pip install openapi-spec-validator)").validate

from orcd.errors import InvalidRequest, invalid
from orcd.server import openai_schema
from orcd.server.fields import Limits
from orcd.server.openapi import document
from orcd.server.schema import CANCEL, EXECUTE, SHUTDOWN
from served import LONG_PROMPT, sse

LIMITS = Limits(vocab_size=1000, max_tokens_out=512)
BODIES = [EXECUTE, CANCEL, SHUTDOWN, openai_schema.COMPLETIONS, openai_schema.CHAT]


def test_the_document_is_valid_openapi_3_1():
    doc = document(LIMITS)
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_route_of_the_app_is_documented(serve):
    async def check(s):
        served = await (await s.client.get("/openapi.json")).get_json()
        rules = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
                 for rule in s.app.url_map.iter_rules()
                 for method in rule.methods - {"HEAD", "OPTIONS"} if rule.endpoint != "static"}
        documented = {(path, method) for path, ops in served["paths"].items() for method in ops}
        assert documented == rules
    serve(check)


def test_the_workers_limits_are_in_the_document():
    props = document(LIMITS)["components"]["schemas"]["ExecuteRequest"]["properties"]
    assert props["max_tokens"]["maximum"] == 512 and props["top_k"]["maximum"] == 1000


def body_schema(body):
    """The body's schema with the document's $refs resolved (none are used inside bodies)."""
    schema = body.schema(LIMITS)
    assert "$ref" not in json.dumps(schema)
    return schema


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b.name)
def test_anything_the_schema_allows_is_accepted(body):
    """One definition yields both: hypothesis writes bodies from the documented schema, and the
    validation takes every one of them."""
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(from_schema(body_schema(body)))
    def accepted(value):
        body.parse(value, LIMITS)
    accepted()


def field_by_field(body, value):
    """What Body.parse must give: every field's own parse, in order, after the unknown check."""
    extra = sorted(set(value) - {f.name for f in body.fields})
    if extra:
        raise invalid(extra[0], body.unknown)
    return {f.name: f.parse(value, LIMITS) for f in body.fields}


def outcome(parse, value):
    try:
        return parse(value)
    except InvalidRequest as e:
        return ("refused", getattr(e, "field", None), str(e))


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 2**65) | st.floats(-3, 3)
                           | st.text(max_size=3), lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=3), inner, max_size=2), max_leaves=4)


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b.name)
def test_a_body_parses_as_its_fields_do(body):
    """Body.parse keeps its defaults made once and looks only at the fields a request names;
    any body, valid or not, gets what each field's own parse gives, or the same refusal."""
    names = [f.name for f in body.fields] + ["no_such_field"]

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(st.sampled_from(names), JSON_VALUES, max_size=4) | from_schema(body_schema(body)))
    def same(value):
        assert outcome(lambda v: body.parse(v, LIMITS), value) == outcome(lambda v: field_by_field(body, v), value)
    same()


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b.name)
def test_no_unknown_field_is_allowed(body):
    schema = body_schema(body)
    assert schema["additionalProperties"] is False
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"no_such_field": 1}, schema)


def test_stream_events_match_their_schemas(serve, long_seed):
    """Each frame is the schema's {event, data}, and data matches that event's contentSchema."""
    doc = document(LIMITS)
    stream = doc["paths"]["/execute"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    payloads = {e["properties"]["event"]["const"]: e["properties"]["data"]["contentSchema"]
                for e in stream["oneOf"]}

    def check_stream(raw: bytes) -> set[str]:
        # "#/components/..." refs resolve against the schema's root: give it the components
        def valid(schema, value):
            jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(value)
        for kind, data in sse(raw):
            valid(stream, {"event": kind, "data": json.dumps(data)})
            valid(payloads[kind], data)
        return {kind for kind, _ in sse(raw)}

    async def whole(s):
        r = await s.client.post("/execute", json={"job_id": "e", "prompt": "Hi", "max_tokens": 3})
        assert {"started", "token", "end"} <= check_stream(await r.get_data())

    async def timed_out(s):
        r = await s.client.post("/execute", json={"job_id": "t", "prompt": LONG_PROMPT, "max_tokens": 200,
                                                  "seed": long_seed})
        assert "error" in check_stream(await r.get_data())
    serve(whole)
    serve(timed_out, timeout_sec=0.05)
