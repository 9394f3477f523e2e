Feature: What OpenAI clients expect of the bundled SmolLM2 beyond plain text
  Logprobs, prompt scoring, JSON that validates, and a queue instead of 503 for overlapping
  requests, through the /v1 routes of a real orcd serve (issue 18).

  Background:
    Given a worker serving the "smollm2" model with "--ctx 1024"

  Scenario: Completions report each token's logprob and its alternatives
    When I ask /v1/completions for 6 tokens of "The capital of France is" with logprobs 3
    Then every token has a logprob and at most 3 alternatives
    And the most likely alternative of each token is the token itself

  Scenario: Echo with max_tokens 0 scores the prompt
    When I ask /v1/completions to score "The lighthouse keeper counted the ships."
    Then the text is the prompt and its first token has no logprob
    And every other prompt token has a negative logprob

  Scenario: A JSON schema holds the answer
    When I ask /v1/chat/completions for a person as JSON under a schema at temperature 1
    Then the answer parses and validates against the schema

  Scenario: Overlapping chat requests wait their turn
    When 3 chat requests arrive at once
    Then all 3 are answered with 200
