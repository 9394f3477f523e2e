"""Structured output on the CPU engine: every object sampled at temperature 1 under a JSON
schema parses and validates (jsonschema is the judge). Fifty come from a tiny synthetic model,
whose random weights would write anything the mask let through; a few from the real SmolLM2."""
import json
import threading

import numpy as np
import pytest

from orcd.engine import create_engine
from orcd.engine.constraint import allowed_ids, bitmask_words, masked
from orcd.engine.grammar import Grammars, json_schema_grammar
from orcd.engine.job import run_job
from orcd.engine.sampling import SamplingParams
from orcd.errors import InternalError, InvalidRequest
from orcd.testing.schemas import CASES

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is the judge (pip install jsonschema)")


@pytest.mark.parametrize("schema, feature", [({"type": "array", "uniqueItems": True}, "uniqueItems"),
                                             ({"not": {"type": "string"}}, "not"),
                                             ({"type": "foo"}, "foo"), ([1], "schema object")])
def test_unsupported_schema_features_are_named(schema, feature):
    with pytest.raises(InvalidRequest) as e:
        json_schema_grammar(schema, "json_schema")
    assert str(e.value).startswith("json_schema:") and feature in str(e.value)
    assert e.value.field == "json_schema"


def test_masked_logits():
    allowed = np.zeros(70, bool)
    allowed[[0, 33, 69]] = True
    mask = np.zeros(bitmask_words(70) * 32, bool)
    mask[:70] = allowed
    words = np.packbits(mask, bitorder="little").view("<u4")
    assert (allowed_ids(words, 70) == allowed).all()
    out = masked(np.arange(70, dtype=np.float32), words)
    assert out[69] == 69 and np.isneginf(out[~allowed]).all()


def sampled(engine, grammars, prompt, schema, seed, temperature=1.0):
    """The text of one job under the schema's grammar; it must end by the model's own EOS."""
    events = list(run_job(engine, engine.tokenizer, prompt, SamplingParams(temperature=temperature, seed=seed),
                          200, [], threading.Event(),
                          constraint=grammars.matcher(json_schema_grammar(schema, "json_schema"))))
    text = "".join(d["t"] for k, d in events if k == "token")
    assert events[-1][1]["stop_reason"] == "eos", (schema, seed, text)
    return text


@pytest.fixture(scope="module")
def tiny(tiny_model):
    engine = create_engine("cpu")
    engine.load(tiny_model("qwen2", "Q8_0"), 256)
    return engine, Grammars(engine.tokenizer, engine.config.vocab_size)


@pytest.fixture(scope="module")
def grammars(smollm2_engine):
    return Grammars(smollm2_engine.tokenizer, smollm2_engine.config.vocab_size)


def test_fifty_sampled_objects_validate(tiny):
    engine, grammars = tiny
    for schema, question in CASES:
        for seed in range(10):
            jsonschema.validate(json.loads(sampled(engine, grammars, question, schema, seed)), schema)


def test_smollm2_answers_validate(smollm2_engine, grammars, chat_ids):
    for schema, question in CASES:
        jsonschema.validate(json.loads(sampled(smollm2_engine, grammars, chat_ids(question), schema, 0)), schema)


@pytest.mark.parametrize("schema", [{"type": "object", "properties": {"a": {"const": 1}}}, {"type": "object"}])
def test_an_object_starts_with_a_brace(grammars, schema):
    m = grammars.matcher(json_schema_grammar(schema, "s"))
    allowed = allowed_ids(m.allowed(), grammars.vocab_size)
    brace = np.flatnonzero(allowed)
    assert brace.size and all(grammars.tokenizer.piece_bytes(i).startswith(b"{") for i in brace)
    assert not allowed[grammars.tokenizer.encode("x", add_special=False)[0]]
    m.consume(grammars.tokenizer.encode("{", add_special=False)[0])
    with pytest.raises(InternalError):  # a second brace is no object key: the matcher says so
        m.consume(grammars.tokenizer.encode("{", add_special=False)[0])
