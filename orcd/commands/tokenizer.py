"""orcd tokenizer: tools over a model's tokenizer."""
from __future__ import annotations

import json

from orcd.errors import ModelLoadError

HELP = "tokenizer tools: export-json writes the GGUF's tokenizer as a Hugging Face tokenizer.json"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = sub.add_parser("export-json", help="write the GGUF's tokenizer as a tokenizer.json "
                            "for the `tokenizers` library (vocabulary, merges, pre-tokenizer, "
                            "special tokens, decoder)")
    export.add_argument("model", metavar="MODEL.gguf", help="the GGUF model or vocabulary file")
    export.add_argument("-o", "--output", required=True, metavar="tokenizer.json",
                        help="where to write the JSON")


def run(args) -> int:
    from orcd.tokenizer import load_vocab
    from orcd.tokenizer.export import to_tokenizer_json
    vocab = load_vocab(args.model)
    if vocab is None:
        raise ModelLoadError(f"{args.model}: the GGUF stores no tokenizer (tokenizer.ggml.model)")
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(to_tokenizer_json(vocab), f, ensure_ascii=False)
    print(f"wrote {args.output}: {len(vocab.tokens)} tokens, tokenizer.ggml.model={vocab.model}, "
          f"pre={vocab.pre}")
    return 0
