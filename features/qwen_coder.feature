Feature: The real Qwen2.5-Coder-0.5B-Instruct file (Q4_K_M) served by orcd serve
  The primary target's architecture and exact quant mix with real weights (SPEC §6), fetched
  by `make models`; its scenarios skip, with the reason, where the file is absent. The haiku
  test (SPEC §11) runs on the CPU engine everywhere and on the CUDA engine where a GPU is.

  Scenario: Health describes the real file
    Given a worker serving the real Qwen2.5-Coder file on the "cpu" engine
    When I GET "/health"
    Then the response status is 200
    And the health field "arch" is "qwen2"
    And the health field "quant_kind" is "Q4_K_M"
    And the health field "tokenizer_kind" is "gguf-bpe"
    And the health field "vocab_size" is 151936

  Scenario: A haiku about GPU computing names the current minute, on the CPU engine
    Given a worker serving the real Qwen2.5-Coder file on the "cpu" engine
    When I ask for a haiku about GPU computing that contains the current minute spelled out
    And I execute the same request again
    Then the haiku contains the minute word
    And both texts are the same

  @gpu
  Scenario: A haiku about GPU computing names the current minute, on the CUDA engine
    Given a worker serving the real Qwen2.5-Coder file on the "cuda" engine
    When I ask for a haiku about GPU computing that contains the current minute spelled out
    And I execute the same request again
    Then the haiku contains the minute word
    And both texts are the same
