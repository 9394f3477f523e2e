# distutils: language = c++
"""Byte-level BPE merges: the inner loop of gguf-bpe encoding.

A chunk's UTF-8 bytes start as one symbol each (the token of that byte); the adjacent pair
of lowest merge rank is replaced by its merged token, leftmost first on ties, until no pair
has a rank (llama.cpp llm_tokenizer_bpe_session, Hugging Face BPE). Results are cached per
chunk: in text most chunks are words already seen.
"""
from cython.operator cimport dereference as deref
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memmove
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

cdef int64_t NO_RANK = 1 << 62


cdef inline uint64_t pair_key(int32_t left, int32_t right) noexcept:
    return (<uint64_t><uint32_t>left << 32) | <uint32_t>right


cdef class BpeMerger:
    cdef unordered_map[uint64_t, int64_t] rank_of      # (left, right) -> rank << 32 | merged id
    cdef int32_t byte_token[256]                       # -1: the vocabulary lacks that byte
    cdef dict cache
    cdef dict whole_word                               # raw bytes -> id, for ignore_merges
    cdef Py_ssize_t cache_limit

    def __init__(self, dict token_id, list merges, byte_token, whole_word=None,
                 Py_ssize_t cache_limit=1 << 18):
        """token_id: token text -> id; merges: "left right" in rank order (a merge naming
        an unknown token is dropped); byte_token: the id of each byte or -1; whole_word:
        when given, a chunk whose bytes are a token is that token unmerged."""
        cdef int64_t rank = 0
        cdef Py_ssize_t cut
        cdef str merge, left, right
        for merge in merges:
            rank += 1
            cut = merge.find(" ", 1)  # as llama.cpp: a token never starts with a space here
            left, right = merge[:cut], merge[cut + 1:]
            a, b, merged = token_id.get(left), token_id.get(right), token_id.get(left + right)
            if a is None or b is None or merged is None:
                continue
            key = pair_key(a, b)
            if self.rank_of.count(key) == 0:
                self.rank_of[key] = (rank << 32) | <int64_t>merged
        for i in range(256):
            self.byte_token[i] = byte_token[i]
        self.whole_word = whole_word
        self.cache = {"": []}
        self.cache_limit = cache_limit

    cdef int64_t pair_rank(self, int32_t left, int32_t right):
        if left < 0 or right < 0:
            return NO_RANK
        cdef unordered_map[uint64_t, int64_t].iterator it = self.rank_of.find(pair_key(left, right))
        if it == self.rank_of.end():
            return NO_RANK
        return deref(it).second

    cdef list merge(self, bytes word):
        cdef Py_ssize_t n = len(word), i, best
        cdef const unsigned char[:] raw = word
        cdef vector[int32_t] symbol = vector[int32_t](n)
        cdef vector[int64_t] rank = vector[int64_t](n)
        if self.whole_word is not None:
            whole = self.whole_word.get(word)
            if whole is not None:
                return [whole]
        for i in range(n):
            symbol[i] = self.byte_token[raw[i]]
        for i in range(n - 1):
            rank[i] = self.pair_rank(symbol[i], symbol[i + 1])
        while n > 1:
            best = 0
            for i in range(1, n - 1):
                if rank[i] < rank[best]:
                    best = i
            if rank[best] == NO_RANK:
                break
            symbol[best] = <int32_t>(rank[best] & 0xffffffff)
            memmove(&symbol[best + 1], &symbol[best + 2], (n - best - 2) * sizeof(int32_t))
            memmove(&rank[best + 1], &rank[best + 2], (n - best - 2) * sizeof(int64_t))
            n -= 1
            if best + 1 < n:
                rank[best] = self.pair_rank(symbol[best], symbol[best + 1])
            if best > 0:
                rank[best - 1] = self.pair_rank(symbol[best - 1], symbol[best])
        return [symbol[i] for i in range(n) if symbol[i] >= 0]

    def encode_chunks(self, list chunks):
        """The ids of the chunks in order; a chunk is a str (pre-tokenizer output)."""
        cdef list out = []
        cdef dict cache = self.cache
        for chunk in chunks:
            ids = cache.get(chunk)
            if ids is None:
                ids = self.merge((<str>chunk).encode("utf-8"))
                if len(cache) >= self.cache_limit:
                    cache.clear()
                    cache[""] = []
                cache[chunk] = ids
            out += <list>ids
        return out

