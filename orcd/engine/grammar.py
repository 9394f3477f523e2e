"""Structured output through llguidance: a JSON schema (or a Lark grammar, for tool calls)
becomes a matcher that gives the ids allowed next as the bitmask of orcd.engine.constraint.

llguidance, not xgrammar: measured on this project's vocabularies (issue 18), its mask takes
22-49 us per token at the median (xgrammar 5-25 us) but a schema compiles in ~1 ms (xgrammar
20-200 ms), and it installs as one 3 MB wheel without dependencies (xgrammar requires torch,
transformers and triton: gigabytes on a CI machine).
"""
from __future__ import annotations

import functools
import threading

import numpy as np

from orcd.engine.constraint import bitmask_words
from orcd.errors import InternalError, invalid

# JSON as json.dumps writes it, and no other whitespace: with free whitespace a sampled model
# can spend every remaining token on spaces and never close the object.
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def _llguidance():
    import llguidance  # imported on first use: most jobs never need it
    return llguidance


def json_schema_grammar(schema, field: str) -> str:
    """The grammar of a JSON schema; INVALID_REQUEST naming the feature llguidance lacks."""
    if not isinstance(schema, dict):
        raise invalid(field, "must be a JSON schema object")
    llg = _llguidance()
    try:
        grammar = llg.LLMatcher.grammar_from_json_schema(schema, overrides=JSON_OPTIONS)
    except ValueError as e:
        raise invalid(field, f"not a usable JSON schema: {e}") from None
    return checked(grammar, field)


def lark_grammar(source: str, field: str) -> str:
    return checked(_llguidance().LLMatcher.grammar_from_lark(source), field)


def checked(grammar: str, field: str) -> str:
    failed, messages = _llguidance().LLMatcher.validate_grammar_with_warnings(grammar)
    if failed:
        raise invalid(field, f"unsupported schema: {messages[0]}")
    return grammar


class Grammars:
    """llguidance's view of one model's vocabulary, built on first use (half a second for
    SmolLM2's 49 k tokens, two for Qwen's 152 k) and shared by every constrained job."""

    def __init__(self, tokenizer, vocab_size: int):
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self._lock = threading.Lock()

    @functools.cached_property
    def llg_tokenizer(self):
        llg = _llguidance()
        tok = self.tokenizer
        ends = sorted(set(tok.eot_ids) | ({tok.eos_id} if tok.eos_id is not None else set()))
        specials = [i for i in range(tok.vocab_size) if tok.is_break(i)]
        marked = set(specials)

        class Wrapper:  # what llguidance.TokenizerWrapper reads
            eos_token_id = ends[0]
            bos_token_id = tok.bos_id
            special_token_ids = specials
            # llguidance's mark of a special token: no grammar string matches it as text
            tokens = [b"\xff" + tok.piece_bytes(i) if i in marked else tok.piece_bytes(i)
                      for i in range(tok.vocab_size)]

            def __call__(self, text: str) -> list[int]:
                return tok.encode(text, add_special=False)
        return llg.LLTokenizer(llg.TokenizerWrapper(Wrapper()), n_vocab=self.vocab_size, eos_token=ends)

    def matcher(self, grammar: str) -> "Matcher":
        with self._lock:  # one build of the tokenizer even if two threads ask
            llg_tokenizer = self.llg_tokenizer
        return Matcher(_llguidance().LLMatcher(llg_tokenizer, grammar), self.vocab_size)


class Matcher:
    """orcd.engine.constraint's Constraint over an llguidance matcher."""

    def __init__(self, matcher, vocab_size: int):
        self._m = matcher
        self._mask = np.zeros(bitmask_words(vocab_size), dtype=np.uint32)
        self._check()

    def allowed(self) -> np.ndarray:
        """The bitmask of the next ids (a buffer reused by the next call)."""
        self._m.unsafe_compute_mask_ptr(self._mask.ctypes.data, self._mask.nbytes)
        self._check()
        return self._mask

    def consume(self, token: int) -> None:
        self._m.consume_token(token)
        self._check()

    def _check(self) -> None:
        if self._m.is_error():
            raise InternalError(f"the grammar matcher failed: {self._m.get_error()}")
