"""Steps for the real Qwen2.5-Coder-0.5B-Instruct file: a worker on a chosen engine, and the
haiku test (haiku.py). Generic steps (health fields, "I execute the same request again",
"both texts are the same") are the shared ones of worker_steps.py and execute_steps.py."""
import time

from behave import given, then, when

from haiku import SAMPLING, contains_word, current_minute_word, haiku_messages
from orcd.testing.worker import Stream, WorkerProcess

CTX = "1024"  # the haiku prompt and answer need about 120 tokens; a small cache loads faster


@given('a worker serving the real Qwen2.5-Coder file on the "{device}" engine')
def step_qwen_worker(context, device):
    from orcd.models import real_path
    try:
        path = real_path("qwen2.5-coder-0.5b")
    except FileNotFoundError as e:
        context.scenario.skip(str(e))
        return
    key = ("qwen2.5-coder-0.5b", device)
    if key not in context.workers:
        context.workers[key] = WorkerProcess(str(path), device, "--ctx", CTX).wait_ready()
    context.worker = context.workers[key]
    context.worker.wait_idle()


@when("I ask for a haiku about GPU computing that contains the current minute spelled out")
def step_ask_haiku(context):
    import orcd.tokenizer
    from orcd.models import real_path
    context.minute_word = current_minute_word()
    tokenizer = orcd.tokenizer.load(real_path("qwen2.5-coder-0.5b"))
    prompt = tokenizer.apply_chat_template(haiku_messages(context.minute_word))
    context.body = {"job_id": f"haiku-{time.monotonic_ns()}", "prompt": prompt, **SAMPLING}
    stream = Stream(context.worker, context.body)
    assert stream.status == 200, (stream.status, stream.response.read())
    stream.finish()
    context.stream = stream
    context.texts = getattr(context, "texts", []) + [stream.text]


@then("the haiku contains the minute word")
def step_haiku_has_minute(context):
    text = context.texts[-1]
    assert context.stream.terminal[0] == "end", context.stream.terminal
    assert contains_word(text, context.minute_word), (context.minute_word, text)
