import pytest
from hypothesis import given
from hypothesis import strategies as st

from orcd.engine.stop import StopMatcher


def run(stops, pieces):
    """Emitted text and whether a stop string ended it, feeding `pieces` one by one."""
    m, out = StopMatcher(stops), []
    for piece in pieces:
        out.append(m.feed(piece))
        if m.stopped:
            return "".join(out), True
    return "".join(out) + m.flush(), False


def test_no_stop_strings_passes_everything_through_at_once():
    m = StopMatcher([])
    assert m.feed("abc") == "abc" and m.feed("") == "" and m.flush() == ""


def test_match_across_pieces_is_withheld():
    assert run(["</s>"], ["Hello <", "/", "s> tail"]) == ("Hello ", True)


def test_prefix_is_held_until_it_cannot_match():
    m = StopMatcher(["STOP"])
    assert m.feed("go ST") == "go "
    assert m.feed("O") == ""
    assert m.feed("RM") == "STORM"
    assert not m.stopped


def test_held_text_is_released_at_the_end():
    assert run(["STOP"], ["a", "ST"]) == ("aST", False)


def test_earliest_match_wins_among_stop_strings():
    assert run(["world", "lo w"], ["hello world"]) == ("hel", True)


def test_overlapping_prefixes():
    assert run(["aab"], ["a", "a", "a", "b", "c"]) == ("a", True)


@given(st.lists(st.text(alphabet="abc", max_size=4), max_size=8),
       st.lists(st.text(alphabet="abc", min_size=1, max_size=3), max_size=3))
def test_emits_the_text_before_the_first_match(pieces, stops):
    """Generation stops at the first piece after which the text holds a stop string, and the
    text before the earliest such match is emitted. A stop string that would start earlier but
    complete only in later text never completes: nothing is generated after the stop (stops
    ["c", "bcc"], pieces "abbc", "caaa": "abb", though "abbcc..." would hold "bcc" at 2)."""
    text, expected = "", None
    for piece in pieces:
        text += piece
        hits = [i for i in (text.find(s) for s in stops) if i >= 0]
        if hits:
            expected = (text[: min(hits)], True)
            break
    assert run(stops, pieces) == (expected or (text, False))


@pytest.mark.parametrize("stops", [["\n\n"], ["é"], ["<|im_end|>", "User:"]])
def test_unicode_and_multiple_stops(stops):
    text, stopped = run(stops, ["Bonjour", " café", "\n", "\nUser: hi"])
    assert stopped and not any(s in text for s in stops)
