"""Writes corpus.jsonl, the tokenizer conformance corpus: one JSON string per line.

    python3 tests/tokenizer/make_corpus.py

Seeded, so the committed file is reproducible. Covers many scripts, combining marks, emoji
with ZWJ and skin tones, code, digit runs, whitespace and newline runs, \\r\\n, special-token
text inside ordinary text, contractions, very long words and lone surrogates.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

SCRIPTS = {
    "latin": "The quick brown fox jumps over the lazy dog. Ça va? Straße, façade, naïve, Ærø, İstanbul, Łódź, ĳssel",
    "greek": "Η γρήγορη καφέ αλεπού πηδάει πάνω από το τεμπέλικο σκυλί. ΑΒΓΔ ά έ ή",
    "cyrillic": "Съешь же ещё этих мягких французских булок, да выпей чаю. ЁЖИК ёжик Ђ Љ Ї",
    "arabic": "نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ومغلف بجلد أزرق ٠١٢٣٤٥",
    "hebrew": "דג סקרן שט בים מאוכזב ולפתע מצא חברה שְׁלוֹם",
    "devanagari": "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम ०१२३",
    "bengali": "আমি বাংলায় গান গাই। এক দুই তিন ১২৩",
    "tamil": "யாமறிந்த மொழிகளிலே தமிழ்மொழி போல் இனிதாவது எங்கும் காணோம்",
    "thai": "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน ๑๒๓",
    "chinese": "我能吞下玻璃而不伤身体。天地玄黄，宇宙洪荒。日月盈昃，辰宿列张。",
    "japanese": "いろはにほへと ちりぬるを わかよたれそ つねならむ カタカナ ｶﾀｶﾅ 漢字とひらがな。",
    "korean": "다람쥐 헌 쳇바퀴에 타고파. 키스의 고유조건은 입술끼리 만나야 하고",
    "georgian": "ქართული ენა მსოფლიოს ერთ-ერთი უძველესი ენაა",
    "armenian": "Բարեւ աշխարհ, հայերեն լեզու",
    "ethiopic": "ሰላም ለዓለም። የኢትዮጵያ ፊደል",
    "math": "∀x∈ℝ: x² ≥ 0, ∑ᵢ aᵢ = ∫₀¹ f(x) dx ≈ 3.14159… ≠ ∞ ½ ¼ ¾ ⅞",
    "symbols": "© ® ™ € £ ¥ ₿ § ¶ † ‡ • … ‰ ′ ″ ‹ › « » „ “ ” ‘ ’ — – ‐",
    "fullwidth": "ＡＢＣ１２３！？　ｈｅｌｌｏ",
}

EMOJI = ["😀", "👍", "👍🏽", "👋🏿", "🧑🏻‍💻", "👨‍👩‍👧‍👦", "👩‍❤️‍💋‍👨", "🏳️‍🌈", "🇫🇷", "🇯🇵", "1️⃣",
         "❤️", "🦙", "🐍", "🤷🏼‍♀️", "🫶🏾", "🧔‍♂️", "☕", "🚀", "✅"]

COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302\u0323", "Z\u0351\u036b\u0343\u036a\u0302",
             "\u0915\u093f", "\u0e01\u0e34\u0e4a", "\u05e9\u05c1\u05b8", "g\u0307", "i\u0307\u0301"]

CODE = [
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "const add = (a, b) => a + b;\nconsole.log(`sum: ${add(1, 2)}`);",
    '{"key": [1, 2.5, -3e10, null, true], "nested": {"a": "b\\n"}}',
    "<html><body><div class=\"x\">Hello &amp; goodbye</div></body></html>",
    "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do echo \"$f\"; done\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    r"re.compile(r'^\s*(\d{1,3})\.(\d+)?$', re.I | re.M)",
    "x+=1;y-=2;z*=3;w/=4;v%=5;u**=6;t//=7;s<<=1;r>>=2;q&=3;p|=4;o^=5",
    "if (a != b && c == d || !e) { return ->ptr::<T>; }",
    "    \n        \n\t\t\n",
    "fn main() -> Result<(), Box<dyn Error>> {\n    println!(\"{:?}\", vec![1, 2, 3]);\n    Ok(())\n}",
]

SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|end|>", "<|user|>", "<|assistant|>",
            "<|system|>", "<s>", "</s>", "<unk>", "<|eot_id|>", "<|begin_of_text|>",
            "<|start_header_id|>", "<|start|>", "<|channel|>", "<|message|>", "<|return|>",
            "<repo_name>", "<file_sep>", "[PAD151650]"]

WORDS = ("the of and to in is you that it he was for on are as with his they I at be this have "
         "from or one had by word but not what all were we when your can said there use an each "
         "which she do how their if will up other about out many then them these so some her "
         "would make like him into time has look two more write go see number no way could people "
         "don't it's I'm you're we've they'll she'd DON'T IT'S I'M YOU'RE WE'VE THEY'LL SHE'D").split()

WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2028", "\u0085",
              "\u200b", "\u2009", "\x0b", "\x0c", " \n", "\n\n", "\t \t"]


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def fragments(rng: random.Random, n: int) -> str:
    pools = [list(SCRIPTS.values()), EMOJI, COMBINING, CODE, SPECIALS, WHITESPACE, WORDS,
             [str(rng.randrange(10 ** rng.randint(1, 12)))]]
    out = []
    for _ in range(n):
        pool = rng.choice(pools)
        piece = rng.choice(pool)
        if pool is pools[0]:
            start = rng.randrange(len(piece))
            piece = piece[start:start + rng.randint(1, 40)]
        out.append(piece)
        out.append(rng.choice(["", " ", "", "\n"]))
    return "".join(out)


def corpus() -> list[str]:
    rng = random.Random(20261123)
    items = [""]
    items += SCRIPTS.values()
    for text in SCRIPTS.values():  # every script cut at random places, alone and mixed
        for _ in range(12):
            start = rng.randrange(len(text))
            items.append(text[start:start + rng.randint(1, 60)])
    items += EMOJI + ["".join(rng.choices(EMOJI, k=rng.randint(2, 12))) for _ in range(30)]
    items += [f"I {e} you{rng.choice(['', '!', ' 2'])}" for e in EMOJI]
    items += COMBINING + [" ".join(rng.choices(COMBINING, k=rng.randint(2, 8))) for _ in range(20)]
    items += CODE + ["".join(rng.choices(CODE, k=rng.randint(2, 4))) for _ in range(30)]
    items += [str(rng.randrange(10 ** k)) for k in range(1, 41)]
    items += [f"{rng.randint(0, 10**9):,}.{rng.randint(0, 999)}" for _ in range(20)]
    items += ["in 1999, 2000 and 20245 the 3rd of 12,345,678 cost $1.50 (~¥160) or 1e-9"]
    items += ["v1.2.3-rc4 0x1F 0b1010 007 3.14159265358979 1/2 10% 24h 127.0.0.1:8080"]
    for ws in WHITESPACE:
        for k in (1, 2, 3, 7, 16, 64):
            items.append(ws * k)
            items.append(f"a{ws * k}b")
            items.append(f"{ws * k}x")
            items.append(f"y{ws * k}")
    items += ["line one\r\nline two\r\n\r\nline four\r\n", "\r\n" * 10, "a\r\n\r\n\tb", "\n\n\n\nend"]
    for special in SPECIALS:
        items.append(special)
        items.append(f"text {special} more text")
        items.append(f"{special}user\nHello!{special}\n")
        items.append(f"no space{special}{special}between")
        items.append(special[:-1] + " " + special[1:])  # near misses stay text
    items.append("<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                 "<|im_start|>assistant\n")
    items += [w.capitalize() + "'s" for w in WORDS[:20]] + ["'S 'T 'RE 'VE 'M 'LL 'D 's 't"]
    items += ["a" * 2000, "ab" * 1500, "x" * 5000 + " y", "A" * 300 + "b" * 300,
              "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=3000)),
              "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", k=2048)),
              "https://example.com/" + "/".join(words(rng, 40).split()) + "?q=1&r=2#frag",
              "supercalifragilisticexpialidocious" * 20, "日本語" * 500, "🦙" * 300, "." * 1000,
              "-" * 500 + "=" * 500, "\u0301" * 50, " " * 2000, "\n" * 1000]
    items += ["\ud800", "a\udfffb", "hi \ud83d there", "\udc00\ud800"]  # lone surrogates
    items += [words(rng, rng.randint(1, 60)) for _ in range(150)]
    items += [fragments(rng, rng.randint(1, 25)) for _ in range(450)]
    return items


if __name__ == "__main__":
    path = Path(__file__).with_name("corpus.jsonl")
    items = corpus()
    with open(path, "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item) + "\n")
    print(f"wrote {len(items)} strings to {path}")
