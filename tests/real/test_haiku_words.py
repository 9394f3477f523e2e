"""The haiku test's minute words and its check (features/steps/haiku.py); no model needed."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "features" / "steps"))
from haiku import contains_word, minute_word  # noqa: E402


@pytest.mark.parametrize("minute,word", [(0, "zero"), (1, "one"), (13, "thirteen"),
                                         (19, "nineteen"), (20, "twenty"), (29, "twenty-nine"),
                                         (40, "forty"), (51, "fifty-one"), (59, "fifty-nine")])
def test_minute_word(minute, word):
    assert minute_word(minute) == word


def test_every_minute_has_its_own_word():
    assert len({minute_word(m) for m in range(60)}) == 60
    with pytest.raises(ValueError):
        minute_word(60)


@pytest.mark.parametrize("text,word,found", [
    ("Twenty-nine cores hum", "twenty-nine", True),
    ("cores,\nTWENTY-NINE.", "twenty-nine", True),
    ("twenty-nine threads", "twenty", False),   # a part of a longer minute word is not it
    ("someone computes", "one", False),
    ("twenty nine", "twenty-nine", False),
])
def test_contains_word(text, word, found):
    assert contains_word(text, word) is found
