# distutils: language = c++
"""Byte-level BPE merges: the inner loop of gguf-bpe encoding.

A chunk's UTF-8 bytes start as one symbol each (the token of that byte); the adjacent pair
of lowest merge rank is replaced by its merged token, leftmost first on ties, until no pair
has a rank (llama.cpp llm_tokenizer_bpe_session, Hugging Face BPE). As in the `tokenizers`
library, the candidate pairs wait in a heap ordered by (rank, position) and the symbols form
a linked list, so a chunk of n bytes costs O(n log n): a hostile prompt of one repeated
character must not cost quadratic time. A merge ranked in the heap may be stale (a side has
merged since); it is dropped when popped, since a pair's rank names that pair alone.
Long chunks are merged without the GIL, so the server keeps answering meanwhile. Results
are cached per chunk: in text most chunks are words already seen.
"""
from cython.operator cimport dereference as deref
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libcpp.pair cimport pair
from libcpp.queue cimport priority_queue
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

cdef int64_t NO_RANK = 1 << 62
cdef int64_t ID_MASK = 0xffffffff  # the merged id in the low half of a rank
# Below this many bytes a merge takes microseconds: releasing the GIL would cost more (the
# thread may wait a switch interval to take it back) than it gives.
cdef Py_ssize_t NOGIL_BYTES = 256


cdef inline uint64_t pair_key(int32_t left, int32_t right) noexcept nogil:
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

    cdef int64_t pair_rank(self, int32_t left, int32_t right) noexcept nogil:
        if left < 0 or right < 0:
            return NO_RANK
        cdef unordered_map[uint64_t, int64_t].iterator it = self.rank_of.find(pair_key(left, right))
        if it == self.rank_of.end():
            return NO_RANK
        return deref(it).second

    cdef void offer(self, priority_queue[pair[int64_t, int64_t]] &heap, const vector[int32_t] &symbol,
                    Py_ssize_t left, Py_ssize_t right) noexcept nogil:
        """Queue the pair (left, right) if it merges; the max-heap holds (-rank, -left), so
        the top is the lowest rank, leftmost on ties."""
        cdef int64_t rank = self.pair_rank(symbol[left], symbol[right])
        if rank != NO_RANK:
            heap.push(pair[int64_t, int64_t](-rank, -left))

    cdef void merge_symbols(self, const unsigned char *raw, Py_ssize_t n,
                            vector[int32_t] &symbol) noexcept nogil:
        """symbol[i] is the token starting at byte i after every merge, -2 where a symbol
        merged into its left neighbour."""
        cdef vector[Py_ssize_t] following = vector[Py_ssize_t](n)
        cdef vector[Py_ssize_t] preceding = vector[Py_ssize_t](n)
        cdef priority_queue[pair[int64_t, int64_t]] heap
        cdef Py_ssize_t i, left, right
        cdef int64_t rank
        for i in range(n):
            symbol[i] = self.byte_token[raw[i]]
            following[i] = i + 1
            preceding[i] = i - 1
        for i in range(n - 1):
            self.offer(heap, symbol, i, i + 1)
        while not heap.empty():
            rank, left = -heap.top().first, -heap.top().second
            heap.pop()
            right = following[left]
            if symbol[left] == -2 or right >= n or self.pair_rank(symbol[left], symbol[right]) != rank:
                continue  # stale: a side merged since this pair was queued
            symbol[left] = <int32_t>(rank & ID_MASK)
            symbol[right] = -2
            following[left] = following[right]
            if following[left] < n:
                preceding[following[left]] = left
                self.offer(heap, symbol, left, following[left])
            if preceding[left] >= 0:
                self.offer(heap, symbol, preceding[left], left)

    cdef list merge(self, bytes word):
        cdef Py_ssize_t n = len(word), i
        cdef const unsigned char *raw = word
        cdef vector[int32_t] symbol = vector[int32_t](n)
        if self.whole_word is not None:
            whole = self.whole_word.get(word)
            if whole is not None:
                return [whole]
        if n >= NOGIL_BYTES:
            with nogil:
                self.merge_symbols(raw, n, symbol)
        else:
            self.merge_symbols(raw, n, symbol)
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

