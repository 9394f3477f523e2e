Feature: The HTTP contract at its edges: the API key, hostile requests, the HTTP layer, the log
  Each scenario pins an answer that a hostile-input probe of the live worker once got wrong
  (issue 19). The workers serve the tiny synthetic qwen2 model, on whichever engine the
  machine has.

  Scenario Outline: With --api-key, <route> needs the key
    Given a worker serving the "qwen2" model with the API key "k-19" in ORCD_API_KEY
    When I call <route> without a key
    Then the answer is 401 "UNAUTHORIZED" asking for a Bearer key
    When I call <route> with the key "not-it"
    Then the answer is 401 "UNAUTHORIZED" asking for a Bearer key
    When I call <route> with the key "k-19"
    Then the answer is <status>

    Examples:
      | route                     | status |
      | POST /execute             | 200    |
      | POST /cancel              | 202    |
      | GET /openapi.json         | 200    |
      | GET /v1/models            | 200    |
      | POST /v1/completions      | 200    |
      | POST /v1/chat/completions | 200    |

  Scenario: /health and /metrics need no key, so that probes and scrapers work
    Given a worker serving the "qwen2" model with the API key "k-19" in ORCD_API_KEY
    When I call GET /health without a key
    Then the answer is 200
    When I call GET /metrics without a key
    Then the answer is 200

  Scenario: /shutdown takes only JSON, which a web page cannot send without asking, and the key
    Given a fresh worker serving the "qwen2" model with the API key "k-19" in ORCD_API_KEY
    When I post "a=1" to /shutdown as application/x-www-form-urlencoded with the key "k-19"
    Then the response is 400 with code "INVALID_REQUEST" naming "Content-Type"
    When I post "{}" to /shutdown as text/plain with the key "k-19"
    Then the response is 400 with code "INVALID_REQUEST" naming "Content-Type"
    When I post "{}" to /shutdown as application/json without a key
    Then the answer is 401 "UNAUTHORIZED" asking for a Bearer key
    When I post "{}" to /shutdown as application/json with the key "k-19"
    Then the answer is 202
    And the worker exits with status 0 within 5 seconds

  Scenario Outline: The HTTP layer answers <case> with <status> and the JSON error body
    Given a worker serving the "qwen2" model
    When I send the raw request <request>
    Then the raw answer is <status> with code "INVALID_REQUEST"
    And the worker still answers /health

    Examples:
      | case                       | request                   | status |
      | a broken request line      | <not HTTP>                | 400    |
      | headers over the limit     | <a 64 KiB header>         | 431    |
      | an unknown transfer coding | <Transfer-Encoding: gzip> | 501    |
      | a WebSocket upgrade        | <a WebSocket upgrade>     | 400    |
      | an invalid Host            | <Host: ..>                | 400    |

  Scenario: A wrong method gets 405 with Allow
    Given a worker serving the "qwen2" model
    When I GET "/execute"
    Then the response is 405 with code "INVALID_REQUEST" naming "GET /execute"
    And the answer allows "POST"

  Scenario: Chat messages take only the roles the API defines
    Given a worker serving the "qwen2" model
    When I ask for a chat completion with the roles narrator, user
    Then the OpenAI error is 400 for the parameter "messages"
    When I ask for a chat completion with the roles system, developer, user, assistant, tool
    Then the answer is 200

  Scenario: A rejection leaves a request_rejected line, never the prompt
    Given a worker serving the "qwen2" model
    When I post to /execute the body {"job_id": "r", "prompt": "my secret plan", "temperature": 9} as application/json
    Then the log has request_rejected for "POST /execute" with code "INVALID_REQUEST" and field "temperature"
    And no line of the log holds "my secret plan"

  Scenario: The log stays one JSON object per line after hostile requests
    Given a worker serving the "qwen2" model
    When I send the raw request <a WebSocket upgrade>
    And I send the raw request <Host: ..>
    And I send the raw request <not HTTP>
    And I send the raw request <a 64 KiB header>
    Then every line of the worker's log is a JSON object

  Scenario: Control-token text is not streamed unless the request asks for it
    Given a worker serving the scripted qwen2 model that writes a control token
    When I execute "Hello" with
      | field       | value |
      | max_tokens  | 8     |
      | temperature | 0     |
    Then the end event says "eos" after 3 tokens
    And the token texts are ["x"]
    When I execute "Hello" with
      | field               | value |
      | max_tokens          | 8     |
      | temperature         | 0     |
      | skip_special_tokens | false |
    Then the end event says "eos" after 3 tokens
    And the token texts are ["<|im_start|>", "x"]
