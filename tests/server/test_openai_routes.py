"""/v1 routes in OpenAI's shapes, over the real NumPy engine."""
import json

import pytest

from orcd.engine.sampling import SamplingParams
from orcd.server import openai
from orcd.server import openai_shapes as shapes
from orcd.server.schema import GenerationRequest
from orcd.server.sse import data_frame, encode_json
from served import sse

BODY = {"model": "qwen2.gguf", "prompt": "Hello", "max_tokens": 5, "temperature": 0}


def data_lines(raw: bytes) -> list[str]:
    return [block.removeprefix("data: ") for block in raw.decode().split("\n\n") if block]


def test_models(serve):
    async def check(s):
        body = await (await s.client.get("/v1/models")).get_json()
        assert body["object"] == "list" and body["data"][0]["id"] == "qwen2.gguf"
    serve(check)


def test_completion_whole_and_streamed_agree(serve):
    async def check(s):
        whole = await (await s.client.post("/v1/completions", json=BODY)).get_json()
        assert whole["object"] == "text_completion" and whole["choices"][0]["finish_reason"] == "length"
        assert whole["usage"]["completion_tokens"] == 5
        assert whole["usage"]["total_tokens"] == whole["usage"]["prompt_tokens"] + 5
        r = await s.client.post("/v1/completions", json={**BODY, "stream": True,
                                                          "stream_options": {"include_usage": True}})
        lines = data_lines(await r.get_data())
        assert lines[-1] == "[DONE]"
        chunks = [json.loads(line) for line in lines[:-1]]
        assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == whole["choices"][0]["text"]
        assert chunks[-2]["choices"][0]["finish_reason"] == "length"
        assert chunks[-1]["usage"] | {"prompt_tokens_details": None} == \
            whole["usage"] | {"prompt_tokens_details": None}  # the second reused the first's rows
    serve(check)


def test_chat_uses_the_template(serve):
    async def check(s):
        body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3,
                "temperature": 0}
        whole = await (await s.client.post("/v1/chat/completions", json=body)).get_json()
        message = whole["choices"][0]["message"]
        assert whole["object"] == "chat.completion" and message["role"] == "assistant"
        r = await s.client.post("/v1/chat/completions", json={**body, "stream": True})
        chunks = [json.loads(line) for line in data_lines(await r.get_data())[:-1]]
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        assert text == message["content"]
        # the chat template wraps the message, so the prompt is longer than "Hi"
        assert whole["usage"]["prompt_tokens"] > 3
    serve(check)


def test_errors_in_openai_shape(serve):
    async def check(s):
        cases = [({**BODY, "n": 0}, "n"), ({**BODY, "temperature": 3}, "temperature"),
                 ({**BODY, "logit_bias": {"1": 5}}, "logit_bias"), ({**BODY, "prompt": [[1, 2]]}, "prompt"),
                 ({**BODY, "best_of": 1, "n": 1, "echo": False, "stop": 7}, "stop"),
                 ({**BODY, "prompt": ["a"] * 9, "n": 8}, "n"), ({**BODY, "max_tokens": 0}, "max_tokens"),
                 ({**BODY, "store": True}, "store"), ({**BODY, "stream": "yes"}, "stream"),
                 ({**BODY, "logprobs": 21}, "logprobs"), ({**BODY, "logprobs": True}, "logprobs")]
        for body, param in cases:
            r = await s.client.post("/v1/completions", json=body)
            error = (await r.get_json())["error"]
            assert r.status_code == 400, (param, error)
            assert r.headers["x-should-retry"] == "false"
            assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "INVALID_REQUEST", param)
        r = await s.client.post("/v1/chat/completions", json={"messages": []})
        assert (await r.get_json())["error"]["param"] == "messages"
    serve(check)


CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0}


async def post(s, route, body):
    r = await s.client.post(route, json=body)
    return r.status_code, await r.get_json()


def test_model_by_id(serve):
    async def check(s):
        assert (await (await s.client.get("/v1/models/qwen2.gguf")).get_json())["id"] == "qwen2.gguf"
        r = await s.client.get("/v1/models/gpt-4")
        assert r.status_code == 404 and r.headers["x-should-retry"] == "false"
        assert "/v1/models/gpt-4" in (await r.get_json())["error"]["message"]
    serve(check)


def test_prompts_and_n_are_choices_with_successive_seeds(serve):
    async def check(s):
        sampled = {**BODY, "temperature": 1.0, "seed": 40, "max_tokens": 6}
        status, body = await post(s, "/v1/completions", {**sampled, "prompt": ["Hello", "Once upon"], "n": 2})
        assert status == 200 and [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
        for index, (prompt, seed) in enumerate([("Hello", 40), ("Hello", 41), ("Once upon", 42), ("Once upon", 43)]):
            _, alone = await post(s, "/v1/completions", {**sampled, "prompt": prompt, "seed": seed})
            assert body["choices"][index]["text"] == alone["choices"][0]["text"], index
        _, hello = await post(s, "/v1/completions", {**sampled, "prompt": "Hello"})
        _, once = await post(s, "/v1/completions", {**sampled, "prompt": "Once upon"})
        assert body["usage"]["prompt_tokens"] == hello["usage"]["prompt_tokens"] + once["usage"]["prompt_tokens"]
        assert body["usage"]["completion_tokens"] == 24
        r = await s.client.post("/v1/completions", json={**sampled, "prompt": ["Hello", "Once upon"], "n": 2,
                                                          "stream": True, "stream_options": {"include_usage": True}})
        chunks = [json.loads(line) for line in data_lines(await r.get_data())[:-1]]
        for index, choice in enumerate(body["choices"]):
            text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"] and c["choices"][0]["index"] == index)
            assert text == choice["text"]
        assert chunks[-1]["usage"] == body["usage"]
    serve(check)


def test_chat_n_samples(serve):
    async def check(s):
        status, body = await post(s, "/v1/chat/completions", {**CHAT, "n": 3, "temperature": 1.0, "seed": 7})
        assert status == 200 and len(body["choices"]) == 3
        _, third = await post(s, "/v1/chat/completions", {**CHAT, "temperature": 1.0, "seed": 9})
        assert body["choices"][2]["message"] == third["choices"][0]["message"]
    serve(check)


def test_max_tokens_above_the_limit_is_capped(serve):
    async def check(s):
        status, body = await post(s, "/v1/completions", {**BODY, "max_tokens": 100_000})
        assert status == 200 and body["choices"][0]["finish_reason"] == "length"
        assert body["usage"]["completion_tokens"] == 3  # --max-tokens-out
        status, body = await post(s, "/v1/chat/completions", {**CHAT, "max_completion_tokens": 9999})
        assert status == 200 and body["usage"]["completion_tokens"] == 3
    serve(check, max_tokens_out=3)


def test_chat_context_overflow_is_context_length_exceeded(serve):
    async def check(s):
        r = await s.client.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": "hi " * 400}]})
        error = (await r.get_json())["error"]
        assert r.status_code == 400 and r.headers["x-should-retry"] == "false"
        assert (error["code"], error["param"]) == ("context_length_exceeded", "messages")
        assert error["message"].startswith("messages:") and "maximum context length is 256" in error["message"]
        status, body = await post(s, "/v1/completions", {**BODY, "prompt": "hi " * 400})
        assert (body["error"]["code"], body["error"]["param"]) == ("context_length_exceeded", "prompt")
    serve(check)


def test_what_asks_for_nothing_we_lack_is_accepted(serve):
    async def check(s):
        turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None},
                 {"role": "user", "content": [{"type": "text", "text": "Again"}]}]
        status, body = await post(s, "/v1/chat/completions", {
            **CHAT, "messages": turns, "stream": None, "store": False, "parallel_tool_calls": True,
            "response_format": {"type": "text"}, "user": "u", "n": None})
        assert status == 200 and body["object"] == "chat.completion", body
    serve(check)


def test_developer_is_rendered_as_system(serve):
    async def check(s):
        template = s.state.engine.tokenizer.chat_template.source
        assert "developer" not in template  # the tiny qwen2 file carries Qwen's template
        prompt = {}
        for role in ("developer", "system"):
            messages = [{"role": role, "content": "Answer in French."}, {"role": "user", "content": "Hi"}]
            _, body = await post(s, "/v1/chat/completions", {**CHAT, "messages": messages})
            prompt[role] = body["usage"]["prompt_tokens"]
        _, bare = await post(s, "/v1/chat/completions", CHAT)
        assert prompt["developer"] == prompt["system"] != bare["usage"]["prompt_tokens"]
    serve(check)


def test_a_timed_out_job_says_do_not_retry(serve):
    async def check(s):
        r = await s.client.post("/v1/completions", json={**BODY, "max_tokens": 200, "prompt": "Once upon a time"})
        assert r.status_code == 504 and r.headers["x-should-retry"] == "false"
        assert (await r.get_json())["error"]["code"] == "INFERENCE_TIMEOUT"
    serve(check, timeout_sec=0.001)


def test_a_streamed_job_that_times_out_ends_with_its_error_then_done(serve):
    """The error frame closes the stream (no later choice, no usage), as OpenAI sends one."""
    async def check(s):
        r = await s.client.post("/v1/completions", json={**BODY, "max_tokens": 200, "prompt": "Once upon a time",
                                                          "n": 2, "stream": True,
                                                          "stream_options": {"include_usage": True}})
        lines = data_lines(await r.get_data())
        assert lines[-1] == "[DONE]"
        assert json.loads(lines[-2])["error"]["code"] == "INFERENCE_TIMEOUT"
        assert all(json.loads(line)["choices"][0]["index"] == 0 for line in lines[:-2])
    serve(check, timeout_sec=0.001)


def test_completion_logprobs_whole_and_streamed(serve):
    async def check(s):
        body = {**BODY, "max_tokens": 6, "logprobs": 3}
        status, whole = await post(s, "/v1/completions", body)
        choice = whole["choices"][0]
        lp = choice["logprobs"]
        assert status == 200 and len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["text_offset"]) == 6
        assert "".join(lp["tokens"]) == choice["text"]
        for token, logprob, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"]):
            assert len(top) <= 3 and max(top.values()) >= logprob and top[token] == logprob  # greedy: top 1
        r = await s.client.post("/v1/completions", json={**body, "stream": True})
        chunks = [json.loads(line) for line in data_lines(await r.get_data())[:-1]]
        streamed = [c["choices"][0]["logprobs"] for c in chunks if c["choices"][0]["logprobs"]]
        assert sum((x["tokens"] for x in streamed), []) == lp["tokens"]
        assert sum((x["text_offset"] for x in streamed), []) == lp["text_offset"]
    serve(check)


def test_echo_scores_the_prompt(serve):
    async def check(s):
        prompt = "The cat sat on the mat"
        status, scored = await post(s, "/v1/completions", {**BODY, "prompt": prompt, "echo": True,
                                                            "logprobs": 1, "max_tokens": 0})
        choice = scored["choices"][0]
        lp = choice["logprobs"]
        assert status == 200 and choice["text"] == prompt and scored["usage"]["completion_tokens"] == 0
        assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
        assert all(v < 0 for v in lp["token_logprobs"][1:]) and "".join(lp["tokens"]) == prompt
        assert lp["text_offset"] == [len("".join(lp["tokens"][:k])) for k in range(len(lp["tokens"]))]
        _, more = await post(s, "/v1/completions", {**BODY, "prompt": prompt, "echo": True, "logprobs": 1,
                                                    "max_tokens": 2})
        lp2 = more["choices"][0]["logprobs"]
        assert lp2["token_logprobs"][:len(lp["tokens"])] == lp["token_logprobs"]
        assert more["choices"][0]["text"].startswith(prompt) and lp2["text_offset"][-2] >= len(prompt)
        r = await s.client.post("/v1/completions", json={**BODY, "prompt": prompt, "echo": True, "logprobs": 1,
                                                          "max_tokens": 2, "stream": True})
        chunks = [json.loads(line) for line in data_lines(await r.get_data())[:-1]]
        assert chunks[0]["choices"][0]["text"] == prompt
        assert chunks[0]["choices"][0]["logprobs"]["token_logprobs"] == lp["token_logprobs"]
        _, plain = await post(s, "/v1/completions", {**BODY, "prompt": prompt, "echo": True})
        assert plain["choices"][0]["text"].startswith(prompt) and plain["choices"][0]["logprobs"] is None
    serve(check)


def test_chat_logprobs(serve):
    async def check(s):
        # the prompt cache would feed the second request rows of the first: equal to ~1e-6 only
        body = {**CHAT, "logprobs": True, "top_logprobs": 2, "cache_prompt": False}
        status, whole = await post(s, "/v1/chat/completions", body)
        content = whole["choices"][0]["logprobs"]["content"]
        assert status == 200 and len(content) == 4
        assert "".join(c["token"] for c in content) == whole["choices"][0]["message"]["content"]
        for c in content:
            assert bytes(c["bytes"]).decode("utf-8", "replace") == c["token"] and len(c["top_logprobs"]) == 2
            assert c["top_logprobs"][0]["token"] == c["token"]  # greedy
        r = await s.client.post("/v1/chat/completions", json={**body, "stream": True})
        chunks = [json.loads(line) for line in data_lines(await r.get_data())[:-1]]
        assert sum((c["choices"][0]["logprobs"]["content"] for c in chunks if c["choices"][0]["logprobs"]), []) == content
        _, bare = await post(s, "/v1/chat/completions", {**CHAT, "logprobs": True})
        assert all(c["top_logprobs"] == [] for c in bare["choices"][0]["logprobs"]["content"])
        status, error = await post(s, "/v1/chat/completions", {**CHAT, "top_logprobs": 2})
        assert status == 400 and error["error"]["param"] == "top_logprobs"
    serve(check)


def test_structured_output_routes(serve):
    async def check(s):
        from orcd.testing.schemas import WEATHER
        fmt = {"type": "json_schema", "json_schema": {"name": "weather", "schema": WEATHER, "strict": True}}
        status, body = await post(s, "/v1/chat/completions", {**CHAT, "max_tokens": 60, "temperature": 1.0,
                                                              "seed": 2, "response_format": fmt})
        answer = json.loads(body["choices"][0]["message"]["content"])
        assert status == 200 and set(answer) == {"city", "celsius", "sky"} and answer["sky"] in WEATHER["properties"]["sky"]["enum"]
        r = await s.client.post("/execute", json={"job_id": "js", "prompt": "Weather:", "max_tokens": 60,
                                                  "json_schema": WEATHER, "seed": 2})
        text = "".join(d["t"] for k, d in sse(await r.get_data()) if k == "token")
        assert set(json.loads(text)) == {"city", "celsius", "sky"}
        status, body = await post(s, "/v1/chat/completions", {**CHAT, "response_format": {"type": "json_object"}})
        assert status == 200 and body["choices"][0]["message"]["content"].startswith("{")
        bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array", "uniqueItems": True}}}
        status, body = await post(s, "/v1/chat/completions", {**CHAT, "response_format": bad})
        assert status == 400 and "uniqueItems" in body["error"]["message"]
        assert body["error"]["param"] == "response_format.json_schema.schema"
        r = await s.client.post("/execute", json={"job_id": "bad", "prompt": "x", "json_schema": {"not": {}}})
        assert r.status_code == 400 and (await r.get_json())["message"].startswith("json_schema: unsupported schema")
        status, body = await post(s, "/v1/chat/completions", {**CHAT, "response_format": {"type": "yaml"}})
        assert status == 400 and body["error"]["param"] == "response_format"
    serve(check)


TEXTS = ["Hello", "", ' "quoted" \\ ', "new\nline\ttab", "ünïcödé 😀", "\x00", "\u2028", "</s>"]


class Pieces:
    """The one tokenizer method a chat chunk's logprobs read."""
    @staticmethod
    def piece_bytes(token_id: int) -> bytes:
        return b"x"


@pytest.mark.parametrize("completion", [shapes.TextCompletion, shapes.ChatCompletion])
@pytest.mark.parametrize("model", ["qwen2.gguf", "\x00"])
@pytest.mark.parametrize("logprobs", [None, 1])
def test_a_streamed_choices_frames_are_its_chunks_encoded(completion, model, logprobs):
    """ChoiceFrames splices a plain token's text into a frame made once; every frame, spliced
    or not, is byte for byte the chunks() of the same events, encoded."""
    request = GenerationRequest(job_id="c", prompt="p", max_tokens=9, stop=(), params=SamplingParams(seed=1),
                                logprobs=logprobs)
    plan = openai.Plan([request], ["p"], 1, stream=True, include_usage=False)
    shape = completion("cmpl-1", model, Pieces())
    frames, reference = openai.ChoiceFrames(shape.streamed_choice(0, plan)), shape.streamed_choice(0, plan)
    lp = {"logprobs": [{"token": "x", "logprob": -0.5, "text_offset": 0, "top_logprobs": [], "id": 1}]}
    events = [("started", {"prompt_tokens": 3, "cached_tokens": 0})]
    events += [("token", {"t": t, "i": i, **(lp if logprobs is not None else {})}) for i, t in enumerate(TEXTS)]
    events += [("end", {"tokens_out": len(TEXTS), "stop_reason": "eos", "prompt_tokens": 3})]
    for kind, data in events:
        expected = b"".join(data_frame(encode_json(c)) for c in reference.chunks(kind, data))
        assert frames(kind, data) == expected, (kind, data)
    assert frames.choice.result == reference.result
    assert bool(frames.splice[0]) == (model != openai.SPLICE)  # unless the model's name is the splice mark
