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
    # The 0.5B model copies a capitalized word that opens the poem; given in lower case
    # inside a sentence ("uses the exact word") it wrote "Fifty-nine" for "forty-nine"
    # (minute 49 failed at seed 29). The check ignores case, so the word is the same.
    return [{"role": "system", "content": "You are a poet who follows instructions exactly."},
            {"role": "user", "content": f'Write a haiku about GPU computing. Begin its first line '
                                        f'with the word "{word.capitalize()}".'}]


def contains_word(text: str, word: str) -> bool:
    """The word on its own (not inside another word), in any letter case."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.IGNORECASE) is not None
