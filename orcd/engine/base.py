"""The Engine interface the server drives (STYLE principle 6): it knows nothing of CUDA.

An engine holds one model. `generate` yields token ids one at a time; the job runner
(orcd/engine/job.py) turns them into text events, so both engines share stop strings,
UTF-8-safe streaming and the end-of-job accounting.

Prompt cache: the KV cache keeps the rows of the last job (its prompt and the generated ids
it decoded), and `cached_ids` says which ids they are, never more than the rows really hold
(a job that fails or is cancelled mid-way leaves only what it completed). A new job may keep
the rows of the longest prefix it shares with them (`reusable_prefix`) and prefill the rest.
"""
from __future__ import annotations

import abc
import threading
from collections import Counter
from typing import Callable, Iterator, NamedTuple

from gguf import LlamaFileType

from orcd.engine.constraint import Constraint
from orcd.engine.logprobs import Scoring
from orcd.engine.sampling import SamplingParams
from orcd.errors import ContextOverflow, InternalError, invalid
from orcd.models import ModelConfig
from orcd.tokenizer import Tokenizer


class Matched(NamedTuple):
    """reusable_prefix's answer n for these two lists, of these lengths."""
    cached: list[int]
    cached_len: int
    prompt: list[int]
    prompt_len: int
    n: int


class Engine(abc.ABC):
    device: str  # "cpu" | "cuda"

    def __init__(self) -> None:
        self.config: ModelConfig | None = None
        self.tokenizer: Tokenizer | None = None
        self.ctx = 0  # positions of the KV cache, set by load
        self.cached_ids: list[int] = []  # the ids whose K/V rows the cache holds, positions 0..
        self._matched: Matched | None = None  # reusable_prefix's last answer (_check_cached)

    @abc.abstractmethod
    def load(self, path, ctx: int | None = None, progress_cb: Callable[[int], None] | None = None,
             tokenizer_json=None) -> None:
        """Load the GGUF model at `path` with a KV cache for `ctx` tokens (default: the model's
        context, at most 8192); progress_cb receives 0, 25, 50, 75 and 100. Sets .config and
        .tokenizer. Raises ModelLoadError (or InsufficientVram)."""

    def prompt_ids(self, prompt: str | list[int]) -> list[int]:
        """The prompt as token ids. Text is read as the server reads it: special-token text is
        that token, BOS as the GGUF says. INVALID_REQUEST unless at least one position of the
        context is left to generate (ContextOverflow when it is the prompt's length). A list
        comes back as it is, not copied: a job passes its ids here three times (the job runner,
        run_job, generate), and the engines only read them."""
        if isinstance(prompt, str):
            ids = self.tokenizer.encode(prompt, add_special=True, parse_special=True)
        else:
            ids = prompt if type(prompt) is list else list(prompt)
        if len(ids) >= self.ctx:
            raise ContextOverflow("prompt", len(ids), self.ctx)
        if not ids:
            raise invalid("prompt", f"0 tokens after tokenization; the context holds {self.ctx} "
                                    f"(--ctx), so a prompt takes 1 to {self.ctx - 1}")
        return ids

    @abc.abstractmethod
    def generate(self, prompt_ids: list[int], params: SamplingParams, max_tokens: int,
                 stop_ids: set[int], cancel: threading.Event, n_cached: int = 0,
                 scoring: Scoring | None = None, constraint: Constraint | None = None,
                 on_start: Callable[[], None] | None = None) -> Iterator[int]:
        """Prefill `prompt_ids` (checked by prompt_ids) but the first n_cached, whose rows the
        cache keeps (at most reusable_prefix(prompt_ids)), then yield up to max_tokens sampled
        ids. A yielded id in stop_ids is the last; generation also ends when the context is
        full. Checks `cancel` before every step and raises orcd.errors.Cancelled when it is set.
        The whole prompt counts for the repetition penalty, cached or not. `scoring` asks for
        log-probabilities (orcd.engine.logprobs) and is filled as the ids come (scoring the
        prompt prefills it whole: a cached row has no logits); `constraint` allows only some
        ids at each step (orcd.engine.constraint). on_start() is called once the job runs (for
        the CUDA engine: once its decode thread has it), before the first id."""

    def reusable_prefix(self, prompt_ids: list[int]) -> int:
        """How many leading prompt ids the cache already holds, at most all but the last two
        (SPEC §8: the same request gives the same ids, cache or not). The logits of the last
        prompt position must be computed, and a prompt's rows are prefilled two or more at a
        time: one row alone would take the CUDA engine's decode kernels, which round
        differently from the prefill kernels that computed it the first time."""
        limit = self._reusable_limit(prompt_ids)
        n = shared_prefix(self.cached_ids, prompt_ids, limit) if limit > 0 else 0
        cached = self.cached_ids
        self._matched = Matched(cached, len(cached), prompt_ids, len(prompt_ids), n)
        return n

    def _reusable_limit(self, prompt_ids: list[int]) -> int:
        """The most rows the cache may give a prompt: what it holds, and all but two."""
        return min(len(self.cached_ids), len(prompt_ids) - 2)

    def _check_cached(self, prompt_ids: list[int], n_cached: int) -> None:
        """n_cached <= reusable_prefix(prompt_ids), checked without searching for it: by the
        answer reusable_prefix last gave, when it was for these very lists (the job runner asks
        it for the prompt it then passes to generate), else by comparing the ids."""
        m = self._matched
        if m is not None and m.cached is self.cached_ids and m.prompt is prompt_ids \
                and m.cached_len == len(m.cached) and m.prompt_len == len(m.prompt):
            held = 0 <= n_cached <= m.n
        else:
            limit = self._reusable_limit(prompt_ids)
            held = n_cached == 0 or (0 < n_cached <= limit
                                     and self.cached_ids[:n_cached] == prompt_ids[:n_cached])
        if not held:
            raise InternalError(f"{n_cached} prompt tokens asked from the cache, which holds "
                                f"{self.reusable_prefix(prompt_ids)} of them")

    def job_marks(self) -> dict[str, int]:
        """Where the running job's time went inside the engine, for `orcd serve --trace`: stage
        name -> time.perf_counter_ns() of each stage reached (the engine_ stages of
        orcd.server.trace.STAGES); an engine without such stages has none."""
        return {}

    @abc.abstractmethod
    def health(self) -> dict:
        """Cached and cheap: {"arch", "model", "quant_kind", "vram_bytes_used",
        "context_length", "device", ...}; no device call."""

    def close(self) -> None:
        """Free the model; the engine may be loaded again."""


DEFAULT_CTX_CAP = 8192  # SPEC §1: --ctx defaults to min(model context, 8192)
PREFIX_BLOCK = 256  # ids compared at once by shared_prefix: a slice comparison runs in C


def shared_prefix(a: list[int], b: list[int], limit: int) -> int:
    """The length of the longest common prefix of a and b, at most limit (<= both lengths):
    all of it first, as a resent conversation shares all the cache holds (the last prompt and
    the answer's ids; 2,500 ids: 5 us, 11 by blocks); else whole blocks compared as slices,
    then the block that differs id by id (differing near its end: 20 us; a binary search over
    slices took 116)."""
    if (a if len(a) == limit else a[:limit]) == (b if len(b) == limit else b[:limit]):
        return limit
    n = 0
    while n < limit:
        end = min(n + PREFIX_BLOCK, limit)
        if a[n:end] != b[n:end]:
            while a[n] == b[n]:
                n += 1
            return n
        n = end
    return limit


def context_for(config: ModelConfig, ctx: int | None) -> int:
    return ctx if ctx else min(config.context_length, DEFAULT_CTX_CAP)


def quant_kind(gguf_file) -> str:
    """The file's quantization as /health reports it: general.file_type's name ("Q4_K_M"),
    else the most common type among its matrices."""
    try:
        name = LlamaFileType(gguf_file.metadata.get("general.file_type")).name
    except ValueError:
        name = "GUESSED"
    if name != "GUESSED":  # MOSTLY_Q4_K_M -> Q4_K_M, ALL_F32 -> F32, MOSTLY_MXFP4_MOE -> MXFP4
        return name.removeprefix("MOSTLY_").removeprefix("ALL_").removesuffix("_MOE")
    types = Counter(t.ggml_type.name for t in gguf_file.tensors.values() if len(t.shape) > 1)
    return types.most_common(1)[0][0] if types else "unknown"
