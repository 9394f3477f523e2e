"""JSON schemas that the structured-output tests sample under, with the question each answers.

They bound every string, array and number: the grammar mask makes an output valid, not short,
and a model at temperature 1 may fill an unbounded string until max_tokens (finish "length")."""

PERSON = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 24}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "email": {"type": "string", "maxLength": 30}},
    "required": ["name", "age"], "additionalProperties": False}
WEATHER = {"type": "object", "properties": {
    "city": {"type": "string", "enum": ["Paris", "Lima", "Oslo"]},
    "celsius": {"type": "integer", "minimum": -50, "maximum": 60},
    "sky": {"type": "string", "enum": ["clear", "cloudy", "rain", "snow"]}},
    "required": ["city", "celsius", "sky"], "additionalProperties": False}
TAGS = {"type": "object", "properties": {
    "title": {"type": "string", "maxLength": 20},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 10}, "minItems": 1, "maxItems": 3},
    "done": {"type": "boolean"}},
    "required": ["title", "tags", "done"], "additionalProperties": False}
NESTED = {"type": "object", "properties": {
    "order": {"type": "object", "properties": {"id": {"type": "integer", "minimum": 1, "maximum": 9999},
                                               "items": {"type": "array", "maxItems": 2, "items": {
                                                   "type": "object", "properties": {
                                                       "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
                                                       "qty": {"type": "integer", "minimum": 1, "maximum": 9}},
                                                   "required": ["sku", "qty"], "additionalProperties": False}}},
              "required": ["id", "items"], "additionalProperties": False},
    "note": {"anyOf": [{"type": "string", "maxLength": 15}, {"type": "null"}]}},
    "required": ["order", "note"], "additionalProperties": False}
FLAGS = {"type": "object", "properties": {
    "kind": {"const": "flags"}, "values": {"type": "array", "items": {"type": "boolean"}, "maxItems": 4},
    "level": {"enum": [1, 2, 3, "max"]}},
    "required": ["kind", "values", "level"], "additionalProperties": False}
CASES = [(PERSON, "Describe a person as JSON."), (WEATHER, "Report the weather as JSON."),
         (TAGS, "Give a task as JSON."), (NESTED, "Write an order as JSON."),
         (FLAGS, "Set some flags as JSON.")]
