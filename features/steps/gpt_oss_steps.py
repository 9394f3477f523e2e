"""Steps for GPT-OSS: a tiny file whose weights script the next token (orcd/testing/scripted.py),
for exact checks of harmony stop tokens and multi-byte streaming, and the real-size synthetic
file made on the GPU box. Generic steps are the shared ones of worker_steps.py and
execute_steps.py."""
import json
import os

from behave import given, then

from orcd.testing.scripted import write_scripted_model
from orcd.testing.worker import WorkerProcess

# After the text on the left, the scripted model writes the text on the right, token by token.
HARMONY_SCRIPT = (
    ("<|message|>", "<|return|>"),
    ("<|constrain|>", "<|call|>"),
    ("<|channel|>", "<|end|>x<|return|>"),
    ("<|start|>", "日é🎉"),
    ("🎉", "日é🎉"),
)
REAL_FILE_ENV = "ORCD_GPT_OSS_REAL_FILE"
# 12 GB of weights reach VRAM in 1 MiB chunks; a cold page cache reads the file from disk.
REAL_START_TIMEOUT_SEC = 480.0


def worker_model_path(worker: WorkerProcess) -> str:
    return worker.argv[worker.argv.index("--model") + 1]


@given("a worker serving the scripted gpt-oss model")
def step_scripted_worker(context):
    key = "gpt-oss-scripted"
    if key not in context.model_paths:
        path = os.path.join(context.model_dir.name, f"{key}.gguf")
        context.model_paths[key] = write_scripted_model(path, "gpt-oss", "MXFP4", HARMONY_SCRIPT)
    if key not in context.workers:
        context.workers[key] = WorkerProcess(context.model_paths[key], context.device,
                                             "--ctx", "256").wait_ready()
    context.model_name = key
    context.worker = context.workers[key]
    context.worker.wait_idle()


@given("a worker serving the real-size gpt-oss file named by ORCD_GPT_OSS_REAL_FILE")
def step_real_worker(context):
    path = os.environ.get(REAL_FILE_ENV)
    if not path or not os.path.isfile(path):
        context.scenario.skip(f"{REAL_FILE_ENV} names no file ({path!r}); make one with "
                              "`orcd synth gpt-oss --preset real --quant MXFP4` and set it")
        return
    key = ("gpt-oss-real", path)
    if key not in context.workers:
        context.workers[key] = WorkerProcess(path, context.device, "--ctx", "1024").wait_ready(
            REAL_START_TIMEOUT_SEC)
    context.model_name = "gpt-oss-real"
    context.worker = context.workers[key]
    context.worker.wait_idle()


@then("the health's vocab_size is the size of the file's vocabulary")
def step_vocab_size(context):
    import orcd.tokenizer
    vocab = orcd.tokenizer.load_vocab(worker_model_path(context.worker))
    assert context.response.json()["vocab_size"] == len(vocab.tokens), \
        (context.response.json()["vocab_size"], len(vocab.tokens))


@then("the token texts are {texts}")
def step_token_texts(context, texts):
    """`texts` is a JSON list: each token event's text, in order."""
    got = [d["t"] for k, d in context.stream.events if k == "token"]
    assert got == json.loads(texts), got
    assert [d["i"] for k, d in context.stream.events if k == "token"] == list(range(len(got)))


@then("the started event counts the prompt's tokens as the model's tokenizer does")
def step_prompt_tokens(context):
    import orcd.tokenizer
    tokenizer = orcd.tokenizer.load(worker_model_path(context.worker))
    ids = tokenizer.encode(context.body["prompt"], add_special=True, parse_special=True)
    assert tokenizer.decode(ids) == context.body["prompt"], tokenizer.decode(ids)
    started = context.stream.events[0][1]
    assert started["prompt_tokens"] == len(ids), (started, ids)
