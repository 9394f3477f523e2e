"""Streaming detokenization: fed one id at a time, the decoder returns only complete UTF-8
and its output concatenates to the whole decode."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orcd.tokenizer


@pytest.fixture(scope="module", params=["smollm2", "synth:phi3"])
def tok(request):
    if request.param == "smollm2":
        return orcd.tokenizer.load(request.getfixturevalue("smollm2_path"))
    return orcd.tokenizer.load(request.getfixturevalue("synth_dir") / "phi3.gguf")


def stream(tok, ids, **kw):
    decoder = tok.stream_decoder(**kw)
    parts = [decoder.feed(i) for i in ids]
    return parts, decoder.flush()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_stream_equals_whole_decode(tok, data):
    ids = data.draw(st.lists(st.integers(0, tok.vocab_size - 1), max_size=40))
    skip = data.draw(st.booleans())
    parts, tail = stream(tok, ids, skip_special=skip, strip_leading_space=True)
    for part in parts:
        part.encode("utf-8")  # raises on a lone surrogate: every part is valid UTF-8
    assert "".join(parts) + tail == tok.decode(ids, skip_special=skip)


def test_unfinished_code_point_is_held(smollm2_path):
    tok = orcd.tokenizer.load(smollm2_path)
    ids = tok.encode("🦙 ok")
    assert len(ids) > len("🦙 ok".split())  # the emoji takes several byte tokens here
    parts, tail = stream(tok, ids)
    assert parts[0] == ""  # first byte(s) of the emoji alone: nothing to show yet
    assert "".join(parts) == "🦙 ok" and tail == ""


def test_sentencepiece_first_space(synth_dir):
    tok = orcd.tokenizer.load(synth_dir / "phi3.gguf")
    ids = tok.encode("hello world", add_special=False)
    assert tok.decode(ids) == "hello world"
    # continuing a prompt, the first word's space is real text
    assert "".join(stream(tok, ids)[0]) == " hello world"
    assert "".join(stream(tok, ids, strip_leading_space=True)[0]) == "hello world"
