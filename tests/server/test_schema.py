"""The /execute request schema: every field's type and range, and the body checks."""
import json

import pytest

from orcd.errors import InvalidRequest
from orcd.server.fields import Limits
from orcd.server.schema import MAX_BODY_BYTES, parse_execute, parse_json_body

VOCAB = 1000
GOOD = {"job_id": "j1", "prompt": "hello"}


def parse(**fields):
    return parse_execute({**GOOD, **fields}, Limits(VOCAB, max_tokens_out=2048))


def test_defaults():
    r = parse()
    assert (r.job_id, r.prompt, r.max_tokens, r.stop) == ("j1", "hello", 2048, ())
    p = r.params
    assert (p.temperature, p.top_p, p.top_k, p.min_p, p.repetition_penalty) == (1.0, 1.0, 0, 0.0, 1.0)
    assert 0 <= p.seed < 2**64


def test_every_field_is_taken():
    r = parse(max_tokens=7, temperature=0, top_p=0.5, top_k=40, min_p=0.1,
              repetition_penalty=1.3, stop=["\n", "END"], seed=2**64 - 1)
    assert r.max_tokens == 7 and r.stop == ("\n", "END")
    assert r.params.temperature == 0.0 and isinstance(r.params.temperature, float)
    assert (r.params.top_p, r.params.top_k, r.params.min_p) == (0.5, 40, 0.1)
    assert (r.params.repetition_penalty, r.params.seed) == (1.3, 2**64 - 1)


@pytest.mark.parametrize("fields", [
    {"temperature": 0.0}, {"temperature": 2.0}, {"top_p": 1.0}, {"top_k": VOCAB},
    {"min_p": 1.0}, {"repetition_penalty": 2.0}, {"max_tokens": 1}, {"seed": 0},
    {"stop": ["x" * 256] * 4}, {"job_id": "j" * 256}, {"prompt": "p" * 32768},
])
def test_edges_accepted(fields):
    parse(**fields)


@pytest.mark.parametrize("fields, field", [
    ({"job_id": ""}, "job_id"), ({"job_id": "j" * 257}, "job_id"), ({"job_id": 5}, "job_id"),
    ({"prompt": ""}, "prompt"), ({"prompt": "p" * 32769}, "prompt"), ({"prompt": ["a"]}, "prompt"),
    ({"max_tokens": 0}, "max_tokens"), ({"max_tokens": 2049}, "max_tokens"),
    ({"max_tokens": 2.5}, "max_tokens"), ({"max_tokens": True}, "max_tokens"),
    ({"seed": 2.0**60}, "seed"),
    ({"temperature": 2.1}, "temperature"), ({"temperature": -0.1}, "temperature"),
    ({"temperature": "1"}, "temperature"), ({"temperature": None}, "temperature"),
    ({"top_p": 0.0}, "top_p"), ({"top_p": 1.5}, "top_p"),
    ({"top_k": -1}, "top_k"), ({"top_k": VOCAB + 1}, "top_k"), ({"top_k": 1.5}, "top_k"),
    ({"min_p": 1.01}, "min_p"), ({"repetition_penalty": 0}, "repetition_penalty"),
    ({"repetition_penalty": 1e-40}, "repetition_penalty"), ({"temperature": 1e-40}, "temperature"),
    ({"repetition_penalty": 2.5}, "repetition_penalty"),
    ({"stop": "x"}, "stop"), ({"stop": ["a"] * 5}, "stop"), ({"stop": [""]}, "stop"),
    ({"stop": ["x" * 257]}, "stop"), ({"stop": [1]}, "stop"),
    ({"seed": -1}, "seed"), ({"seed": 2**64}, "seed"), ({"seed": "7"}, "seed"),
    ({"bogus": 1}, "bogus"),
])
def test_rejections_name_the_field(fields, field):
    with pytest.raises(InvalidRequest) as e:
        parse(**fields)
    assert e.value.field == field
    assert str(e.value).startswith(field)


def test_an_integral_number_is_an_integer():
    """JSON and JSON Schema's "integer" do not tell 2 from 2.0; the document allows both."""
    r = parse(max_tokens=2.0, top_k=40.0, seed=7.0)
    assert (r.max_tokens, r.params.top_k, r.params.seed) == (2, 40, 7)
    assert isinstance(r.max_tokens, int)


@pytest.mark.parametrize("missing", ["job_id", "prompt"])
def test_required(missing):
    body = dict(GOOD)
    del body[missing]
    with pytest.raises(InvalidRequest, match=f"^{missing}: required"):
        parse_execute(body, Limits(VOCAB, 2048))


def test_max_tokens_out_caps_the_range():
    with pytest.raises(InvalidRequest, match=r"max_tokens: must be in 1\.\.100"):
        parse_execute({**GOOD, "max_tokens": 101}, Limits(VOCAB, max_tokens_out=100))
    assert parse_execute(GOOD, Limits(VOCAB, max_tokens_out=100)).max_tokens == 100


@pytest.mark.parametrize("body, content_type, field", [
    (b'{"job_id": ', "application/json", "body"),
    (b"[1, 2]", "application/json", "body"),
    (b'{"temperature": NaN}', "application/json", "body"),
    (b'{"prompt": "\xff"}', "application/json", "body"),
    (b"{}", "text/plain", "Content-Type"),
    (b"{}", None, "Content-Type"),
    (b" " * (MAX_BODY_BYTES + 1), "application/json", "body"),
])
def test_bad_bodies(body, content_type, field):
    with pytest.raises(InvalidRequest) as e:
        parse_json_body(body, content_type)
    assert e.value.field == field


def test_json_body_with_charset():
    assert parse_json_body(json.dumps(GOOD).encode(), "application/json; charset=utf-8") == GOOD


@pytest.mark.parametrize("raw, why", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"seed": ' + b"9" * 5000 + b"}", "integer literal of 5000 digits"),
    (b'{"temperature": -' + b"1" * 400 + b"}", "integer literal of 400 digits"),
])
def test_hostile_json_is_a_400_naming_the_body(raw, why):
    with pytest.raises(InvalidRequest, match=why) as e:
        parse_json_body(raw, "application/json")
    assert e.value.field == "body"


@pytest.mark.parametrize("field", ["job_id", "prompt", "stop"])
def test_a_lone_surrogate_is_refused(field):
    """JSON can spell "\\ud800", which has no UTF-8 form: the job_id could not be echoed in
    the stream, so every text field refuses it, naming the field."""
    body = parse_json_body(json.dumps({**GOOD, field: ["a\ud800"] if field == "stop" else "a\ud800"}).encode(),
                           "application/json")
    with pytest.raises(InvalidRequest, match="lone surrogate") as e:
        parse_execute(body, Limits(VOCAB, 2048))
    assert e.value.field == field


def test_skip_special_tokens_defaults_to_true_and_must_be_a_boolean():
    assert parse().skip_special is True and parse(skip_special_tokens=False).skip_special is False
    with pytest.raises(InvalidRequest, match="^skip_special_tokens"):
        parse(skip_special_tokens="no")


def test_an_empty_body_is_an_empty_object_only_where_allowed():
    assert parse_json_body(b"", "application/json", allow_empty=True) == {}
    with pytest.raises(InvalidRequest, match="^body"):
        parse_json_body(b"", "application/json")
    with pytest.raises(InvalidRequest, match="^Content-Type"):
        parse_json_body(b"", "text/plain", allow_empty=True)
