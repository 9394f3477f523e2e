Feature: Qwen2.5 architecture (tiny synthetic qwen2: QKV bias, tied embeddings, NEOX RoPE) served by orcd serve
  A tiny random-weight qwen2 file written by orcd.testing.synth.write_model: the text is
  noise, but the contract (health, SSE order, sampling options, cancel, busy, shutdown) is
  the same as for a real file of this architecture.

  Background:
    Given a worker serving the "qwen2" model with "--ctx 512"

  Scenario: Start-up reports every health field
    When I GET "/health"
    Then the response status is 200
    And the health report has every field of the contract
    And the health field "status" is "healthy"
    And the health field "arch" is "qwen2"
    And the health field "tokenizer_kind" is "gguf-bpe"
    And the health field "context_length" is 512
    And the health field "busy" is false
    And the health reports the engine's device

  Scenario: Loading narrates its progress
    Then the log has the load progress events 0, 25, 50, 75 and 100 before ready

  Scenario: The stream is started, tokens, end
    When I execute "story" with
      | field       | value |
      | max_tokens  | 8     |
      | temperature | 0     |
    Then the events are started, tokens and one end
    And the started event carries the job, model, time, seed and prompt size
    And the log has execute_start and execute_end for that job without its prompt

  Scenario Outline: Temperature <t> is <verdict>
    When I post to /execute the body {"job_id": "t", "prompt": "Hi", "max_tokens": 2, "temperature": <t>} as application/json
    Then the response status is <status>

    Examples:
      | t   | verdict  | status |
      | 0.0 | accepted | 200    |
      | 2.0 | accepted | 200    |
      | 2.1 | rejected | 400    |

  Scenario: The same seed gives the same text
    When I execute "story" with
      | field       | value |
      | max_tokens  | 16    |
      | seed        | 99    |
    And I execute the same request again
    Then both texts are the same

  Scenario: A stop string ends the text before it
    When I execute "story" with
      | field       | value |
      | max_tokens  | 24    |
      | temperature | 0     |
    And I pick a stop string from the middle of that text
    And I execute the same request with that stop string
    Then the text ends just before the stop string

  Scenario: top_k 1, a tiny top_p and min_p 1 all reduce to greedy
    When I execute "story" with
      | field       | value |
      | max_tokens  | 8     |
      | temperature | 0     |
    And I execute "story" again with
      | field       | value |
      | max_tokens  | 8     |
      | temperature | 1.5   |
      | top_k       | 1     |
    And I execute "story" again with
      | field       | value  |
      | max_tokens  | 8      |
      | temperature | 1.5    |
      | top_p       | 0.0001 |
    And I execute "story" again with
      | field       | value |
      | max_tokens  | 8     |
      | temperature | 1.5   |
      | min_p       | 1.0   |
    Then the texts are the same as greedy

  Scenario: A repetition penalty is applied and the job completes
    When I execute "story" with
      | field              | value |
      | max_tokens         | 8     |
      | repetition_penalty | 1.3   |
      | top_k              | 40    |
      | top_p              | 0.9   |
      | min_p              | 0.05  |
    Then the job ends with end

  Scenario: Multibyte prompts and random tokens stream as whole code points
    When I execute "emoji" with
      | field       | value |
      | max_tokens  | 32    |
      | seed        | 7     |
    Then every token text is valid UTF-8

  Scenario: Cancel mid-stream
    Given a long job is streaming
    When I cancel that job
    Then the stream ends with error "CANCELLED" and retriable false
    And the worker is idle again and takes the next job

  Scenario: A client that disconnects mid-stream frees the worker
    Given a long job is streaming
    When the client disconnects
    Then the worker is idle again and takes the next job

  Scenario: A second job while one runs is refused
    Given a long job is streaming
    When a second job is sent
    Then it is refused with 503 "WORKER_BUSY", retriable and with Retry-After
    When I cancel that job
    Then the worker is idle again and takes the next job

  Scenario Outline: Bad request: <case>
    When I post to /execute the body <body> as <content_type>
    Then the response is 400 with code "INVALID_REQUEST" naming "<field>"

    Examples:
      | case                 | body                                                 | content_type     | field       |
      | unknown field        | {"job_id": "b", "prompt": "Hi", "n": 2}              | application/json | n           |
      | temperature too high | {"job_id": "b", "prompt": "Hi", "temperature": 2.1}  | application/json | temperature |
      | top_k a string       | {"job_id": "b", "prompt": "Hi", "top_k": "5"}        | application/json | top_k       |
      | malformed JSON       | {"job_id"                                            | application/json | body        |
      | prompt over context  | <a prompt longer than the context>                   | application/json | prompt      |

  Scenario: POST /shutdown ends the job and exits 0
    Given a fresh worker serving the "qwen2" model
    And a long job is streaming
    When I stop the worker with POST /shutdown
    Then the stream ends with a terminal event
    And the worker exits with status 0 within 5 seconds

  Scenario: SIGTERM ends the job and exits 0
    Given a fresh worker serving the "qwen2" model
    And a long job is streaming
    When I stop the worker with SIGTERM
    Then the stream ends with a terminal event
    And the worker exits with status 0 within 5 seconds
