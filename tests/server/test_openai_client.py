"""The official `openai` client, unchanged, against a real `orcd serve` on the NumPy engine."""
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

openai = pytest.importorskip("openai", reason="the openai package is not installed (pip install openai)")


@pytest.fixture(scope="module")
def base_url(tiny_model, tmp_path_factory):
    log = open(tmp_path_factory.mktemp("openai") / "serve.log", "w+")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "orcd.cli", "serve", "--device", "cpu", "--model",
                             str(tiny_model), "--port", str(port), "--ctx", "256"],
                            stderr=log, env={"OPENBLAS_NUM_THREADS": "1", **os.environ})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # a tiny model loads in about a second; CI may be slow
    while True:
        try:
            httpx.get(url + "/health")
            break
        except httpx.TransportError:
            assert proc.poll() is None and time.monotonic() < deadline, open(log.name).read()
            time.sleep(0.1)
    yield url + "/v1"
    proc.terminate()
    assert proc.wait(10) == 0
    log.close()


@pytest.fixture
def client(base_url):
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)


def test_models(client):
    assert [m.id for m in client.models.list()] == ["qwen2.gguf"]


def test_completion_streamed_equals_whole(client):
    args = dict(model="qwen2.gguf", prompt="Hello", max_tokens=6, temperature=0)
    whole = client.completions.create(**args)
    streamed = "".join(c.choices[0].text for c in client.completions.create(**args, stream=True))
    assert whole.choices[0].text == streamed and whole.usage.completion_tokens == 6
    assert whole.choices[0].finish_reason == "length"


def test_chat_streamed_equals_whole(client):
    args = dict(model="qwen2.gguf", messages=[{"role": "user", "content": "Hi"}], max_tokens=6,
                temperature=0, seed=3)
    whole = client.chat.completions.create(**args)
    chunks = list(client.chat.completions.create(**args, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert whole.choices[0].message.content == streamed
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason == "length"


def test_errors_raise_the_client_exception(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="m", prompt="Hello", max_tokens=4, temperature=2.5)
    assert e.value.code == "INVALID_REQUEST" and e.value.param == "temperature"
