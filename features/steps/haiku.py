"""The haiku test (SPEC §11): a haiku about GPU computing that must contain the current minute
spelled out; it passes when that word appears in the generated text. Shared by the behave
steps and tests/real/haiku_rate.py, which measures how often it passes."""
from __future__ import annotations

import datetime
import re

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen"]
TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty"}
# Near-greedy: low temperature keeps the 0.5B model on the instruction, the seed still counts.
SAMPLING = {"temperature": 0.2, "top_p": 0.9, "seed": 29, "max_tokens": 64}


def minute_word(minute: int) -> str:
    """0 -> "zero", 1-19 one word, tens alone ("forty"), others hyphenated ("twenty-nine")."""
    if not 0 <= minute < 60:
        raise ValueError(f"a minute is 0..59, got {minute}")
    if minute < 20:
        return ONES[minute]
    tens, ones = divmod(minute, 10)
    return TENS[tens] + (f"-{ONES[ones]}" if ones else "")


def current_minute_word() -> str:
    return minute_word(datetime.datetime.now(datetime.timezone.utc).minute)


def haiku_messages(word: str) -> list[dict]:
    # The system line and "in letters, never as digits" keep the 0.5B model from writing
    # "49" or drifting to another number: 59/60 minute words pass at seed 29 (was 58/60).
    return [{"role": "system", "content": "You are a poet who follows instructions exactly."},
            {"role": "user", "content": f'Write a haiku about GPU computing that uses the exact '
                                        f'word "{word}". Write "{word}" in letters, never as digits.'}]


def contains_word(text: str, word: str) -> bool:
    """The word on its own (not inside another word), in any letter case."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.IGNORECASE) is not None
