"""Regenerate tests/reference/golden/gpt_oss_tiny_mxfp4.npz: llama.cpp's logits and greedy
ids on a tiny synthetic gpt-oss file (MXFP4 experts, Q8_0 attention), so CI checks the NumPy
gpt-oss reference against llama.cpp without llama.cpp.

    python3 tests/reference/make_gpt_oss_golden.py      (needs llama-cpp-python)

The file is rebuilt from (QUANT, SEED) by orcd.testing.synth; its sha256 is stored so a
changed generator shows up as a stale golden, not as a wrong forward pass.
"""
from __future__ import annotations

import hashlib
import pathlib
import tempfile

import numpy as np

from orcd.testing.oracles import llama_greedy, llama_logits
from orcd.testing.synth import write_model

OUT = pathlib.Path(__file__).with_name("golden") / "gpt_oss_tiny_mxfp4.npz"
QUANT, SEED = "MXFP4", 3
CTX = 160
# four sequences of 24 tokens, three times the tiny preset's sliding window of 8 each: a
# routing flip spoils the rest of its own sequence only (see test_gpt_oss.usable_positions)
SEQUENCES, TEACHER_FORCED, PROMPT, GREEDY = 4, 24, 16, 32


def write_file(directory) -> pathlib.Path:
    return write_model(pathlib.Path(directory) / f"gpt-oss-{QUANT}.gguf", "gpt-oss",
                       quant=QUANT, seed=SEED)


def sha256(path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def token_ids(vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forced ids and a greedy prompt drawn from the normal tokens (the specials and
    padding sit at the end of the tiny vocabulary)."""
    rng = np.random.default_rng(SEED)
    return (rng.integers(0, vocab_size - 32, (SEQUENCES, TEACHER_FORCED)),
            rng.integers(0, vocab_size - 32, PROMPT))


def main() -> None:
    import llama_cpp

    with tempfile.TemporaryDirectory() as tmp:
        path = write_file(tmp)
        llm = llama_cpp.Llama(str(path), logits_all=True, n_ctx=CTX, n_threads=2, verbose=False)
        tf_ids, prompt = token_ids(llm.n_vocab())
        logits = np.stack([llama_logits(llm, ids) for ids in tf_ids])
        greedy_ids, margins = llama_greedy(llm, prompt, GREEDY)
        llm.close()
        digest = sha256(path)
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, file_sha256=digest, tf_ids=tf_ids.astype(np.int32), logits=logits,
                        prompt_ids=prompt.astype(np.int32), greedy_ids=greedy_ids,
                        greedy_margins=margins, llama_cpp_version=llama_cpp.__version__)
    print(f"wrote {OUT}: {tf_ids.size} teacher-forced positions, {len(greedy_ids)} greedy ids")


if __name__ == "__main__":
    main()
