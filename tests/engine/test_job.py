"""run_job on the CPU engine and the real SmolLM2: the events the server streams."""
import threading

import pytest

from orcd.engine.job import run_job
from orcd.engine.sampling import SamplingParams
from orcd.errors import Cancelled

GREEDY = SamplingParams(temperature=0.0)
# greedy SmolLM2 Q4_1 answers: "2 + 2 = 4<|im_end|>"; "Hello there! I'm here to help with ..."
SUM = "What is 2+2? Answer with a number only."
HI = "Say hi."


def job(engine, prompt, max_tokens=16, stop=(), params=GREEDY, cancel=None):
    return list(run_job(engine, engine.tokenizer, prompt, params, max_tokens, list(stop),
                        cancel or threading.Event()))


def text_of(events) -> str:
    return "".join(data["t"] for kind, data in events if kind == "token")


def check_stream(events):
    """Token events numbered 0, 1, ... with non-empty text, then exactly one end."""
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "end" and kinds.count("end") == 1 and set(kinds[:-1]) <= {"token"}
    tokens = [data for kind, data in events if kind == "token"]
    assert [d["i"] for d in tokens] == list(range(len(tokens)))
    assert all(d["t"] and d["t"].encode("utf-8") for d in tokens)
    return events[-1][1]


def test_end_of_generation_token_stops(smollm2_engine, chat_ids):
    ids = chat_ids(SUM)
    events = job(smollm2_engine, ids)
    end = check_stream(events)
    assert text_of(events) == "2 + 2 = 4"
    assert end["stop_reason"] == "eos" and end["tokens_out"] == 8 and end["prompt_tokens"] == len(ids)
    assert end["decode_time_ms"] > 0


def test_max_tokens_stops_and_text_is_the_decoded_ids(smollm2_engine, chat_ids):
    ids = chat_ids(HI)
    events = job(smollm2_engine, ids, max_tokens=5)
    end = check_stream(events)
    produced = list(smollm2_engine.generate(ids, GREEDY, 5, set(), threading.Event()))
    assert end["stop_reason"] == "max_tokens" and end["tokens_out"] == 5
    assert text_of(events) == smollm2_engine.tokenizer.decode(produced) == "Hello there! I'm"


def test_stop_string_across_tokens_is_withheld(smollm2_engine, chat_ids):
    events = job(smollm2_engine, chat_ids(HI), stop=["e! I"])  # spans " there", "!", " I"
    end = check_stream(events)
    assert text_of(events) == "Hello ther"
    assert end["stop_reason"] == "stop" and end["tokens_out"] == 4


def test_prompt_text_is_tokenized_with_special_tokens(smollm2_engine, chat_ids):
    tok = smollm2_engine.tokenizer
    text = tok.apply_chat_template([{"role": "user", "content": SUM}])
    assert text_of(job(smollm2_engine, text)) == "2 + 2 = 4"


def test_split_code_points_are_held_until_complete(smollm2_engine, chat_ids):
    """Each emoji takes three byte-level tokens; no event carries a partial one. One cut short
    by max_tokens ends the text as U+FFFD, as decode() renders it."""
    ids = chat_ids("Repeat exactly: 😀😀😀 你好世界 🎉")
    events = job(smollm2_engine, ids, max_tokens=15)
    check_stream(events)
    produced = list(smollm2_engine.generate(ids, GREEDY, 15, set(), threading.Event()))
    texts = [d["t"] for k, d in events if k == "token"]
    assert texts == ["😀", "😀", "😀", "\n", "\n", "😀", "\ufffd"]
    assert text_of(events) == smollm2_engine.tokenizer.decode(produced)


def test_sampled_job_replays_with_its_seed(smollm2_engine, chat_ids):
    params = SamplingParams(temperature=1.0, top_p=0.95, seed=2024)
    first = job(smollm2_engine, chat_ids(HI), max_tokens=12, params=params)
    again = job(smollm2_engine, chat_ids(HI), max_tokens=12, params=params)
    assert [e for e in first if e[0] == "token"] == [e for e in again if e[0] == "token"]


def test_cancel_before_start(smollm2_engine, chat_ids):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        job(smollm2_engine, chat_ids(HI), cancel=cancel)


def test_cancel_during_generation(smollm2_engine, chat_ids):
    cancel, seen = threading.Event(), []
    with pytest.raises(Cancelled):
        for kind, data in run_job(smollm2_engine, smollm2_engine.tokenizer, chat_ids(HI), GREEDY, 16,
                                  [], cancel):
            seen.append(data)
            if len(seen) == 2:
                cancel.set()
    assert len(seen) == 2


def test_on_start_is_called_once_before_the_first_event(smollm2_engine, chat_ids):
    """run_job makes its text side when the engine starts the job, then calls the caller's
    on_start (the server's `started`), before any event; the CPU engine stamps its stages."""
    calls, events = [], []
    for kind, data in run_job(smollm2_engine, smollm2_engine.tokenizer, chat_ids(SUM), GREEDY, 8,
                              ["4"], threading.Event(), on_start=lambda: calls.append(len(events))):
        events.append((kind, data))
    assert calls == [0]
    assert text_of(events) == "2 + 2 = " and events[-1][1]["stop_reason"] == "stop"
    marks = smollm2_engine.job_marks()
    assert marks["engine_entered"] <= marks["engine_prefilled"] <= marks["engine_first_id"]
