Feature: SmolLM2-135M-Instruct (the real bundled model) served by orcd serve
  The worker loads the bundled model, reports its health, and streams jobs over SSE
  exactly as SPEC §2 says. Without a GPU it runs the NumPy engine (--device cpu).

  Background:
    Given a worker serving the "smollm2" model with "--ctx 1024"

  Scenario: Start-up reports every health field
    When I GET "/health"
    Then the response status is 200
    And the health report has every field of the contract
    And the health field "status" is "healthy"
    And the health field "arch" is "llama"
    And the health field "tokenizer_kind" is "gguf-bpe"
    And the health field "vocab_size" is 49152
    And the health field "context_length" is 1024
    And the health field "resident" is true
    And the health field "busy" is false
    And the health reports the engine's device

  Scenario: Loading narrates its progress
    Then the log has the load progress events 0, 25, 50, 75 and 100 before ready

  Scenario: The stream is started, tokens, end
    When I execute "story" with
      | field       | value |
      | max_tokens  | 5     |
      | temperature | 0     |
    Then the events are started, tokens and one end
    And the started event carries the job, model, time, seed and prompt size
    And the end event says "max_tokens" after 5 tokens
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
      | max_tokens  | 8     |
      | temperature | 0.9   |
      | seed        | 1234  |
    And I execute the same request again
    Then both texts are the same

  Scenario: A stop string ends the text before it
    When I execute "story" with
      | field       | value |
      | max_tokens  | 12    |
      | temperature | 0     |
    And I pick a stop string from the middle of that text
    And I execute the same request with that stop string
    Then the text ends just before the stop string

  Scenario: top_k 1, a tiny top_p and min_p 1 all reduce to greedy
    When I execute "story" with
      | field       | value |
      | max_tokens  | 6     |
      | temperature | 0     |
    And I execute "story" again with
      | field       | value |
      | max_tokens  | 6     |
      | temperature | 1.5   |
      | top_k       | 1     |
    And I execute "story" again with
      | field       | value  |
      | max_tokens  | 6      |
      | temperature | 1.5    |
      | top_p       | 0.0001 |
    And I execute "story" again with
      | field       | value |
      | max_tokens  | 6     |
      | temperature | 1.5   |
      | min_p       | 1.0   |
    Then the texts are the same as greedy

  Scenario: A repetition penalty is applied and the job completes
    When I execute "story" with
      | field              | value |
      | max_tokens         | 6     |
      | repetition_penalty | 1.3   |
      | top_k              | 40    |
      | top_p              | 0.9   |
      | min_p              | 0.05  |
    Then the job ends with end

  Scenario: Multibyte characters stream as whole code points
    When I execute "japanese" with
      | field       | value |
      | max_tokens  | 12    |
      | temperature | 0     |
    Then every token text is valid UTF-8
    And no code point was split between tokens
    And the text has characters beyond ASCII

  Scenario: Cancel mid-stream
    Given a long job is streaming
    When I cancel that job
    Then the stream ends with error "CANCELLED" and retriable false
    And cancelling it again is accepted too
    And the worker is idle again and takes the next job

  Scenario: A client that disconnects mid-stream frees the worker
    Given a long job is streaming
    When the client disconnects
    Then the worker is idle again and takes the next job

  Scenario: A second job while one runs is refused
    Given a long job is streaming
    When a second job is sent
    Then it is refused with 503 "WORKER_BUSY", retriable and with Retry-After
    And the refusal does not name the running job
    When I cancel that job
    Then the worker is idle again and takes the next job

  Scenario Outline: Bad request: <case>
    When I post to /execute the body <body> as <content_type>
    Then the response is 400 with code "INVALID_REQUEST" naming "<field>"

    Examples:
      | case                  | body                                                               | content_type     | field        |
      | unknown field         | {"job_id": "b", "prompt": "Hi", "colour": "red"}                   | application/json | colour       |
      | missing job_id        | {"prompt": "Hi"}                                                   | application/json | job_id       |
      | missing prompt        | {"job_id": "b"}                                                    | application/json | prompt       |
      | empty job_id          | {"job_id": "", "prompt": "Hi"}                                     | application/json | job_id       |
      | empty prompt          | {"job_id": "b", "prompt": ""}                                      | application/json | prompt       |
      | prompt not a string   | {"job_id": "b", "prompt": 42}                                      | application/json | prompt       |
      | max_tokens zero       | {"job_id": "b", "prompt": "Hi", "max_tokens": 0}                   | application/json | max_tokens   |
      | max_tokens too large  | {"job_id": "b", "prompt": "Hi", "max_tokens": 2049}                | application/json | max_tokens   |
      | max_tokens a float    | {"job_id": "b", "prompt": "Hi", "max_tokens": 1.5}                 | application/json | max_tokens   |
      | temperature negative  | {"job_id": "b", "prompt": "Hi", "temperature": -0.5}               | application/json | temperature  |
      | temperature a string  | {"job_id": "b", "prompt": "Hi", "temperature": "hot"}              | application/json | temperature  |
      | top_p zero            | {"job_id": "b", "prompt": "Hi", "top_p": 0}                        | application/json | top_p        |
      | top_p above one       | {"job_id": "b", "prompt": "Hi", "top_p": 1.01}                     | application/json | top_p        |
      | top_k negative        | {"job_id": "b", "prompt": "Hi", "top_k": -1}                       | application/json | top_k        |
      | top_k above the vocab | {"job_id": "b", "prompt": "Hi", "top_k": 49153}                    | application/json | top_k        |
      | min_p above one       | {"job_id": "b", "prompt": "Hi", "min_p": 1.5}                      | application/json | min_p        |
      | penalty zero          | {"job_id": "b", "prompt": "Hi", "repetition_penalty": 0}           | application/json | repetition_penalty |
      | penalty above two     | {"job_id": "b", "prompt": "Hi", "repetition_penalty": 2.5}         | application/json | repetition_penalty |
      | penalty near zero     | {"job_id": "b", "prompt": "Hi", "repetition_penalty": 1e-40}       | application/json | repetition_penalty |
      | temperature near zero | {"job_id": "b", "prompt": "Hi", "temperature": 1e-40}              | application/json | temperature  |
      | lone surrogate job_id | {"job_id": "\ud800", "prompt": "Hi"}                               | application/json | job_id       |
      | stop not a list       | {"job_id": "b", "prompt": "Hi", "stop": "END"}                     | application/json | stop         |
      | five stop strings     | {"job_id": "b", "prompt": "Hi", "stop": ["a","b","c","d","e"]}     | application/json | stop         |
      | empty stop string     | {"job_id": "b", "prompt": "Hi", "stop": [""]}                      | application/json | stop         |
      | negative seed         | {"job_id": "b", "prompt": "Hi", "seed": -1}                        | application/json | seed         |
      | seed beyond uint64    | {"job_id": "b", "prompt": "Hi", "seed": 18446744073709551616}      | application/json | seed         |
      | malformed JSON        | {"job_id": "b", "prompt":                                          | application/json | body         |
      | not an object         | ["job_id", "prompt"]                                               | application/json | body         |
      | wrong content type    | {"job_id": "b", "prompt": "Hi"}                                    | text/plain       | Content-Type |
      | body over 1 MiB       | <2 MiB of spaces>                                                  | application/json | body         |
      | JSON 100000 deep      | <JSON nested 100000 deep>                                          | application/json | body         |
      | integer of 5000 digits | <a seed of 5000 digits>                                           | application/json | body         |
      | prompt over context   | <a prompt longer than the context>                                 | application/json | prompt       |

  Scenario: The ready notice reaches the callback URL
    Given a callback receiver
    When a worker serving the "smollm2" model starts with that callback
    Then the callback receives the ready notice

  Scenario: POST /shutdown cancels the job, which may run elsewhere, and exits 0
    Given a fresh worker serving the "smollm2" model
    And a long job is streaming
    When I stop the worker with POST /shutdown
    Then the stream ends with error "CANCELLED" and retriable true
    And the worker exits with status 0 within 5 seconds

  Scenario: SIGTERM cancels the job, which may run elsewhere, and exits 0
    Given a fresh worker serving the "smollm2" model
    And a long job is streaming
    When I stop the worker with SIGTERM
    Then the stream ends with error "CANCELLED" and retriable true
    And the worker exits with status 0 within 5 seconds

  Scenario: A file that is not a model fails start-up with exit 1
    Given a file that is not a GGUF model
    When I run orcd serve with --model model:bad --device cpu --port 0
    Then it exits with status 1 and one line naming "MODEL_LOAD_FAILED"

  Scenario: A taken port fails start-up with exit 1
    Given a port that is already taken
    When I run orcd serve with --model model:smollm2 --device cpu --port {port}
    Then it exits with status 1 and one line naming "choose another --port"

  @no_gpu
  Scenario: Without a GPU the default device fails and names --device cpu
    When I run orcd serve with --model model:smollm2 --port 0
    Then it exits with status 1 and one line naming "--device cpu"

  @gpu
  Scenario: An allocation failure at load exits 1 with INSUFFICIENT_VRAM, the start-up code
    When I run orcd serve with --model model:smollm2 --port 0 ORCD_FAULT=alloc:1
    Then it exits with status 1 and one line naming "INSUFFICIENT_VRAM"

  @gpu
  Scenario: An allocation failure in a job fails that job only, and the worker keeps serving
    Given a worker serving the "smollm2" model whose first job allocation fails
    When a client asks /v1/completions to score "The lighthouse keeper counted the ships."
    Then the answer is error "VRAM_OOM" with x-should-retry true
    And the worker is idle again and takes the next job
