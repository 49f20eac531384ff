"""Language models that write target-language text, in two parts that two stages use.

- :mod:`pipeline.llm.acquire` (stage ``llm``): turn ``synth.model`` (a packaged GGUF file, ``tiny-random`` or a
  Hugging Face model) into a plain HF directory ``models/llm``, once.
- :mod:`pipeline.llm.generate` (stage ``synthesize``): load that directory (or reach an OpenAI-compatible endpoint),
  trim the vocabulary, fine-tune and sample in batches.
- :mod:`pipeline.llm.common`: what both share (:class:`~pipeline.llm.common.LLMError`, batch padding).

Kept apart so that a change to generation does not re-run the model conversion, and the reverse. This file imports
nothing: the submodules pull in torch and transformers.
"""
