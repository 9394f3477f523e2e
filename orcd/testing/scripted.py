"""A tiny synthetic model whose weights decide the next token from the current one, so a
greedy job writes a known token sequence: stop tokens and multi-byte text can then be
checked exactly on any engine, with no API to force a token.

Each scripted token `a` gets its own residual direction e_k: its embedding row is C·e_k,
and output.weight maps e_k to its successor `b` (column k is L at row b, 0 elsewhere). The
other weights stay the generator's random ones.
"""
from __future__ import annotations

import gguf
import numpy as np

import orcd.tokenizer
from orcd import quant
from orcd.testing.synth import write_model

# Far larger than what attention and the experts add to the residual (a few units at the
# generator's weight scales), so the final hidden state points along the current token's e_k.
EMBEDDING_SCALE = 64.0
# The successor's logit is then about L·sqrt(embedding_length) = 32 against a few units for
# every other token: greedy sampling always picks it.
SUCCESSOR_WEIGHT = 4.0


def successors(tokenizer, script) -> dict[int, int]:
    """(after, then) text pairs -> next-token map: the last token of `after` is followed by the
    tokens of `then` in order; each token has at most one successor."""
    def ids(text):
        return tokenizer.encode(text, add_special=False, parse_special=True)

    table: dict[int, int] = {}
    for after, then in script:
        chain = ids(after)[-1:] + ids(then)
        for a, b in zip(chain, chain[1:]):
            assert table.setdefault(a, b) == b, f"token {a} is scripted twice: {script}"
    return table


def write_scripted_model(path, arch: str, quant_mix: str, script, **overrides) -> str:
    """`overrides` go to write_model; the script needs an output.weight (tied_output=False)."""
    write_model(path, arch, quant=quant_mix, **overrides)
    table = successors(orcd.tokenizer.load(path), script)
    reader = gguf.GGUFReader(str(path), "r+")
    tensors = {t.name: t for t in reader.tensors}
    embedding = _values(tensors["token_embd.weight"])
    output = _values(tensors["output.weight"])
    assert len(table) <= embedding.shape[1], "more scripted tokens than residual dimensions"
    for k, (a, b) in enumerate(table.items()):
        embedding[a] = 0.0
        embedding[a, k] = EMBEDDING_SCALE
        output[:, k] = 0.0
        output[b, k] = SUCCESSOR_WEIGHT
    _store(tensors["token_embd.weight"], embedding)
    _store(tensors["output.weight"], output)
    reader.data.flush()
    return str(path)


def _values(tensor) -> np.ndarray:
    shape = tuple(int(n) for n in reversed(tensor.shape))
    return quant.dequantize(np.asarray(tensor.data), tensor.tensor_type, shape)


def _store(tensor, values: np.ndarray) -> None:
    tensor.data[...] = quant.quantize(values, tensor.tensor_type).reshape(tensor.data.shape)
