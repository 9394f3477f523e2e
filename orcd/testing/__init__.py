"""Synthetic GGUF models: `orcd.testing.synth.write_model` and the `orcd synth` command."""
