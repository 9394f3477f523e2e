"""A GGUF vocabulary as a Hugging Face tokenizer.json: the same vocabulary, merges,
pre-tokenizer, special tokens and decoder, for the `tokenizers` library. It is both a
feature (`orcd tokenizer export-json`) and the conformance oracle of the GGUF backends."""
from __future__ import annotations

from orcd.errors import ModelLoadError
from orcd.tokenizer.pretokenize import IGNORE_MERGES, regexes_for
from orcd.tokenizer.spm import SPACE
from orcd.tokenizer.vocab import BYTE, CONTROL, UNKNOWN, USER_DEFINED, GgufVocab


def added_tokens(vocab: GgufVocab) -> list[dict]:
    kinds = vocab.token_type.tolist()
    return [{"id": i, "content": text, "single_word": False, "lstrip": False,
             "rstrip": i in vocab.rstrip_ids, "normalized": False,
             "special": kind != USER_DEFINED}
            for i, (text, kind) in enumerate(zip(vocab.tokens, kinds))
            if kind in (CONTROL, UNKNOWN, USER_DEFINED)]


def _post_processor(vocab: GgufVocab) -> dict | None:
    first = [vocab.bos_id] if vocab.add_bos and vocab.bos_id is not None else []
    last = [vocab.eos_id] if vocab.add_eos and vocab.eos_id is not None else []
    if not first and not last:
        return None
    special = {vocab.tokens[i]: {"id": vocab.tokens[i], "ids": [i], "tokens": [vocab.tokens[i]]}
               for i in first + last}

    def sequence(seq_id):
        return ([{"SpecialToken": {"id": vocab.tokens[i], "type_id": 0}} for i in first]
                + [{"Sequence": {"id": seq_id, "type_id": 0}}]
                + [{"SpecialToken": {"id": vocab.tokens[i], "type_id": 0}} for i in last])

    return {"type": "TemplateProcessing", "single": sequence("A"),
            "pair": sequence("A") + sequence("B")[len(first):], "special_tokens": special}


def _vocab_map(vocab: GgufVocab) -> dict[str, int]:
    return {text: i for i, text in enumerate(vocab.tokens)}


def _bpe_json(vocab: GgufVocab) -> dict:
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                  "use_regex": False}
    splits = [{"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": False}
              for r in regexes_for(vocab.pre)]
    merges = []
    for merge in vocab.merges:
        cut = merge.find(" ", 1)
        merges.append([merge[:cut], merge[cut + 1:]])
    return {
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": splits + [byte_level]},
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": vocab.pre in IGNORE_MERGES,
                  "vocab": _vocab_map(vocab), "merges": merges},
    }


def spm_merges(vocab: GgufVocab) -> list[list[str]]:
    """SentencePiece BPE keeps no merge list: it merges the pair whose concatenation is the
    best-scoring token. The equivalent ranked list: every split of every token into two
    tokens, ordered by the merged token's score (highest first)."""
    ids = _vocab_map(vocab)
    scores = vocab.scores.tolist()
    kinds = vocab.token_type.tolist()
    ranked = []
    for merged, i in ids.items():
        if kinds[i] == BYTE:
            continue
        for cut in range(1, len(merged)):
            left, right = merged[:cut], merged[cut:]
            if left in ids and right in ids:
                ranked.append((-scores[i], i, cut, left, right))
    ranked.sort()
    return [[left, right] for *_, left, right in ranked]


def _spm_json(vocab: GgufVocab) -> dict:
    if vocab.scores is None:
        raise ModelLoadError("a SentencePiece vocabulary needs tokenizer.ggml.scores")
    normalizers = [{"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]
    decoders = [{"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}]
    if vocab.add_space_prefix:
        normalizers.insert(0, {"type": "Prepend", "prepend": SPACE})
        decoders.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    unk = vocab.tokens[vocab.unknown_id] if vocab.unknown_id is not None else None
    return {
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": None,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {"type": "BPE", "dropout": None, "unk_token": unk,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": _vocab_map(vocab), "merges": spm_merges(vocab)},
    }


def to_tokenizer_json(vocab: GgufVocab) -> dict:
    if vocab.model == "gpt2":
        body = _bpe_json(vocab)
    elif vocab.model == "llama":
        body = _spm_json(vocab)
    else:
        raise ModelLoadError(f"tokenizer.ggml.model={vocab.model!r} cannot be exported; "
                             "supported: gpt2, llama")
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": added_tokens(vocab), "post_processor": _post_processor(vocab),
            **body}
