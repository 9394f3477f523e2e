# distutils: language = c++
"""SentencePiece merges: the inner loop of gguf-spm encoding (Phi-3), as llama.cpp's
llm_tokenizer_spm_session runs it.

A fragment's code points start as one symbol each; the adjacent pair whose concatenation is
a token of highest score merges first (leftmost on ties) until no pair is a token. Candidate
pairs wait in a heap (O(n log n)); one is stale once either side has merged since it was
offered, which the sum of the two sizes tells. A final symbol that is no token falls back to
its UTF-8 bytes as <0xNN> tokens.
"""
from cython.operator cimport dereference as deref
from libc.stdint cimport int32_t
from libcpp.pair cimport pair
from libcpp.queue cimport priority_queue
from libcpp.string_view cimport string_view
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

# ((score, -left), (right, bytes of both)): the heap's top is the best score, then the leftmost.
ctypedef pair[pair[float, int32_t], pair[int32_t, int32_t]] Candidate


cdef inline int utf8_length(unsigned char lead) noexcept nogil:
    if lead < 0x80:
        return 1
    if lead >> 5 == 0x6:
        return 2
    if lead >> 4 == 0xE:
        return 3
    return 4


cdef class SpmMerger:
    cdef bytes texts                                 # every token's UTF-8, back to back
    cdef unordered_map[string_view, int32_t] token   # views into texts -> id
    cdef vector[float] score
    cdef int32_t byte_token[256]                     # -1: the vocabulary lacks <0xNN>

    def __init__(self, list tokens, scores, byte_token):
        """tokens: the vocabulary's texts ("▁" for space); scores: one per token; byte_token:
        the id of each byte's <0xNN> token or -1. A text held twice names its last id."""
        encoded = [t.encode("utf-8", "surrogatepass") for t in tokens]
        self.texts = b"".join(encoded)
        cdef const char *base = self.texts
        cdef size_t at = 0
        cdef int32_t i
        for i in range(len(encoded)):
            self.token[string_view(base + at, len(encoded[i]))] = i
            at += len(encoded[i])
        self.score = [float(s) for s in scores]
        for i in range(256):
            self.byte_token[i] = byte_token[i]

    cdef int32_t lookup(self, const char *text, int32_t start, int32_t size) noexcept nogil:
        it = self.token.find(string_view(text + start, size))
        return -1 if it == self.token.end() else deref(it).second

    cdef void offer(self, priority_queue[Candidate] &queue, const char *text,
                    vector[int32_t] &start, vector[int32_t] &size, int32_t left,
                    int32_t right) noexcept nogil:
        if left < 0 or right >= <int32_t>start.size():
            return
        cdef int32_t id = self.lookup(text, start[left], size[left] + size[right])
        if id >= 0:
            queue.push(Candidate(pair[float, int32_t](self.score[id], -left),
                                 pair[int32_t, int32_t](right, size[left] + size[right])))

    cdef void merge(self, const char *text, int32_t n_bytes, vector[int32_t] &start,
                    vector[int32_t] &size, vector[int32_t] &following) noexcept nogil:
        """Symbols of text as spans (start, size); size 0: merged into the one before it."""
        cdef int32_t at = 0, n, k, left, right, both
        cdef vector[int32_t] preceding
        cdef priority_queue[Candidate] queue
        while at < n_bytes:
            start.push_back(at)
            size.push_back(min(utf8_length(<unsigned char>text[at]), n_bytes - at))
            at += size.back()
        n = start.size()
        for k in range(n):
            following.push_back(k + 1)
            preceding.push_back(k - 1)
        for k in range(n - 1):
            self.offer(queue, text, start, size, k, k + 1)
        while not queue.empty():
            left, right = -queue.top().first.second, queue.top().second.first
            both = queue.top().second.second
            queue.pop()
            if size[left] == 0 or size[right] == 0 or size[left] + size[right] != both:
                continue
            size[left] = both
            size[right] = 0
            following[left] = following[right]
            if following[left] < n:
                preceding[following[left]] = left
            self.offer(queue, text, start, size, preceding[left], left)
            self.offer(queue, text, start, size, left, following[left])

    def encode(self, str fragment):
        """The ids of a fragment whose spaces are already "▁"."""
        data = fragment.encode("utf-8")
        cdef const char *text = data
        cdef int32_t n_bytes = len(data), k = 0, b, id
        cdef vector[int32_t] start, size, following
        with nogil:
            self.merge(text, n_bytes, start, size, following)
        cdef list out = []
        while k < <int32_t>start.size():
            id = self.lookup(text, start[k], size[k])
            if id >= 0:
                out.append(id)
            else:
                for b in range(start[k], start[k] + size[k]):
                    if self.byte_token[<unsigned char>text[b]] >= 0:
                        out.append(self.byte_token[<unsigned char>text[b]])
            k = following[k]
        return out
