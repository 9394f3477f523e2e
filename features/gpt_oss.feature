Feature: GPT-OSS architecture (tiny synthetic gpt-oss: MoE with MXFP4 experts, attention sinks, sliding window, YaRN RoPE, o200k harmony vocabulary) served by orcd serve
  A tiny random-weight gpt-oss file written by orcd.testing.synth.write_model with the MXFP4
  mix (`orcd synth gpt-oss --preset tiny --quant MXFP4`): the text is noise, but the contract
  is the same as for a real file of this architecture. A second tiny file has weights that
  script the next token (features/steps/gpt_oss_steps.py, HARMONY_SCRIPT):
    after <|message|>   it writes <|return|>
    after <|constrain|> it writes <|call|>
    after <|channel|>   it writes <|end|>, x, <|return|>
    after <|start|>     it writes 日é🎉 byte by byte, then again after 🎉
  so stop tokens and multi-byte streaming are checked exactly. The full-size scenarios need
  the real-size synthetic file (`orcd synth gpt-oss --preset real --quant MXFP4`, 12 GB) named
  by ORCD_GPT_OSS_REAL_FILE, and a GPU.

  Scenario: Start-up reports every health field
    Given a worker serving the "gpt-oss" model with "--ctx 512"
    When I GET "/health"
    Then the response status is 200
    And the health report has every field of the contract
    And the health field "status" is "healthy"
    And the health field "arch" is "gpt-oss"
    And the health field "quant_kind" is "MXFP4"
    And the health field "tokenizer_kind" is "gguf-bpe"
    And the health's vocab_size is the size of the file's vocabulary
    And the health field "context_length" is 512
    And the health field "busy" is false
    And the health reports the engine's device

  Scenario: Loading narrates its progress
    Given a worker serving the "gpt-oss" model with "--ctx 512"
    Then the log has the load progress events 0, 25, 50, 75 and 100 before ready

  Scenario: The stream is started, tokens, end
    Given a worker serving the "gpt-oss" model with "--ctx 512"
    When I execute "story" with
      | field       | value |
      | max_tokens  | 8     |
      | temperature | 0     |
    Then the events are started, tokens and one end
    And the started event carries the job, model, time, seed and prompt size
    And the log has execute_start and execute_end for that job without its prompt

  Scenario: The same seed gives the same text
    Given a worker serving the "gpt-oss" model with "--ctx 512"
    When I execute "story" with
      | field       | value |
      | max_tokens  | 16    |
      | seed        | 99    |
    And I execute the same request again
    Then both texts are the same

  Scenario: Multibyte prompts and random tokens stream as whole code points
    Given a worker serving the "gpt-oss" model with "--ctx 512"
    When I execute "japanese" with
      | field       | value |
      | max_tokens  | 32    |
      | seed        | 7     |
    Then the started event counts the prompt's tokens as the model's tokenizer does
    And every token text is valid UTF-8

  Scenario: Cancel mid-stream
    Given a worker serving the "gpt-oss" model with "--ctx 512"
    And a long job is streaming
    When I cancel that job
    Then the stream ends with error "CANCELLED" and retriable false
    And the worker is idle again and takes the next job

  Scenario: A second job while one runs is refused
    Given a worker serving the "gpt-oss" model with "--ctx 512"
    And a long job is streaming
    When a second job is sent
    Then it is refused with 503 "WORKER_BUSY", retriable and with Retry-After
    When I cancel that job
    Then the worker is idle again and takes the next job

  Scenario: <|return|> ends the generation and is not streamed
    Given a worker serving the scripted gpt-oss model
    When I execute "Hello<|message|>" with
      | field       | value |
      | max_tokens  | 8     |
      | temperature | 0     |
    Then the events are started, tokens and one end
    And the end event says "eos" after 1 tokens
    And the token texts are []

  Scenario: <|call|> ends the generation and is not streamed
    Given a worker serving the scripted gpt-oss model
    When I execute "Hello<|constrain|>" with
      | field       | value |
      | max_tokens  | 8     |
      | temperature | 0     |
    Then the end event says "eos" after 1 tokens
    And the token texts are []

  Scenario: <|end|> ends a message, not the turn: generation goes on to <|return|>
    Given a worker serving the scripted gpt-oss model
    When I execute "Hello<|channel|>" with
      | field       | value |
      | max_tokens  | 8     |
      | temperature | 0     |
    Then the end event says "eos" after 3 tokens
    And the token texts are ["<|end|>", "x"]

  Scenario: Multi-byte text written byte by byte streams as whole code points
    Given a worker serving the scripted gpt-oss model
    When I execute "日本の首都は<|start|>" with
      | field       | value |
      | max_tokens  | 18    |
      | temperature | 0     |
    Then the started event counts the prompt's tokens as the model's tokenizer does
    And the end event says "max_tokens" after 18 tokens
    And the token texts are ["日", "é", "🎉", "日", "é", "🎉"]

  Scenario: A job cut inside a code point ends with U+FFFD, never a broken byte
    Given a worker serving the scripted gpt-oss model
    When I execute "日本の首都は<|start|>" with
      | field       | value |
      | max_tokens  | 4     |
      | temperature | 0     |
    Then the end event says "max_tokens" after 4 tokens
    And the token texts are ["日", "\ufffd"]

  Scenario: A multi-byte stop string ends the text before it
    Given a worker serving the scripted gpt-oss model
    When I execute "日本の首都は<|start|>" with
      | field       | value   |
      | max_tokens  | 18      |
      | temperature | 0       |
      | stop        | ["🎉"]  |
    Then the end event says "stop" after 9 tokens
    And the token texts are ["日", "é"]

  @gpu
  Scenario: An allocation failure at load exits 1 with INSUFFICIENT_VRAM, the start-up code
    When I run orcd serve with --model model:gpt-oss --port 0 ORCD_FAULT=alloc:1
    Then it exits with status 1 and one line naming "INSUFFICIENT_VRAM"

  @gpu
  Scenario: An allocation failure in a job fails that job only, and the worker keeps serving
    Given a worker serving the "gpt-oss" model whose first job allocation fails
    When a client asks /v1/completions to score "The lighthouse keeper counted the ships."
    Then the answer is error "VRAM_OOM" with x-should-retry true
    And the worker is idle again and takes the next job

  @gpu
  Scenario: The real-size file loads, reports itself and streams
    Given a worker serving the real-size gpt-oss file named by ORCD_GPT_OSS_REAL_FILE
    Then the log has the load progress events 0, 25, 50, 75 and 100 before ready
    When I GET "/health"
    Then the response status is 200
    And the health field "status" is "healthy"
    And the health field "arch" is "gpt-oss"
    And the health field "quant_kind" is "MXFP4"
    And the health field "tokenizer_kind" is "gguf-bpe"
    And the health field "vocab_size" is 201088
    And the health reports the engine's device
    When I execute "story" with
      | field       | value |
      | max_tokens  | 8     |
      | temperature | 0     |
    Then the events are started, tokens and one end
    And the started event carries the job, model, time, seed and prompt size

  @gpu
  Scenario: The real-size file streams multi-byte text as whole code points
    Given a worker serving the real-size gpt-oss file named by ORCD_GPT_OSS_REAL_FILE
    When I execute "japanese" with
      | field       | value |
      | max_tokens  | 16    |
      | seed        | 7     |
    Then the started event counts the prompt's tokens as the model's tokenizer does
    And the events are started, tokens and one end
    And every token text is valid UTF-8
