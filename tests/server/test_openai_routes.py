"""/v1 routes in OpenAI's shapes, over the real NumPy engine."""
import json

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
        cases = [({**BODY, "n": 2}, "n"), ({**BODY, "temperature": 3}, "temperature"),
                 ({**BODY, "logit_bias": {"1": 5}}, "logit_bias"), ({**BODY, "prompt": ["a", "b"]}, "prompt"),
                 ({**BODY, "best_of": 1, "n": 1, "echo": False, "stop": 7}, "stop")]
        for body, param in cases:
            r = await s.client.post("/v1/completions", json=body)
            error = (await r.get_json())["error"]
            assert r.status_code == 400, (param, error)
            assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "INVALID_REQUEST", param)
        r = await s.client.post("/v1/chat/completions", json={"messages": []})
        assert (await r.get_json())["error"]["param"] == "messages"
    serve(check)
