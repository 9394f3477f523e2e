import pytest

from orcd.engine import create_engine


@pytest.fixture(scope="session")
def smollm2_engine(smollm2_path):
    """The CPU engine on the bundled SmolLM2, loaded once."""
    engine = create_engine("cpu")
    engine.load(smollm2_path, 512)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def chat_ids(smollm2_engine):
    """chat_ids(question) -> token ids of a one-turn chat prompt."""
    tok = smollm2_engine.tokenizer

    def make(question: str) -> list[int]:
        text = tok.apply_chat_template([{"role": "user", "content": question}])
        return tok.encode(text, add_special=True, parse_special=True)
    return make
