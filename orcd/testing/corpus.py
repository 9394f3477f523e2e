"""The short English + code text the synthetic tokenizers are trained on."""

TEXT = """\
The quick brown fox jumps over the lazy dog. A worker owns one GPU and one model, keeps the
whole model in memory, and serves text generation over HTTP. Once upon a time there was a
small language model that wanted to write haiku about the sea, the moon and the mountains.
It is a truth universally acknowledged, that a single token in possession of good context
must be in want of attention. Hello, world! How are you today? I am fine, thank you.
The rain in Spain stays mainly in the plain. Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 2024.

def fibonacci(n: int) -> int:
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)

for i in range(10):
    print(f"{i}: {fibonacci(i)}")

class Tokenizer:
    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.merges = merges

    def encode(self, text):
        return [self.vocab[piece] for piece in text.split()]

int main(void) {
    const char *message = "hello";
    for (int i = 0; i < 3; ++i) printf("%s %d\\n", message, i);
    return 0;
}
"""
