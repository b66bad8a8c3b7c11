"""GRPO fine-tuning of a vision-language model (Qwen2.5-VL) for action difference reasoning.

Modules, in the order data flows through them:

- :mod:`kept.grpo.config`: the typed run config (``configs/grpo/*.yaml``, ``key=value`` overrides).
- :mod:`kept.grpo.keyframes`: keyframe images of a recording (video frames or skeleton renderings).
- :mod:`kept.grpo.data`: ``kept grpo prepare``, pair rows carrying KEPT's outputs, and the TRL datasets.
- :mod:`kept.grpo.answer`: the stepwise pair-answer format (``<look>``, ``<recognition>``,
  ``<assessment>``, ``<answer>``), its writer and lenient parser.
- :mod:`kept.grpo.rewards`: TRL reward functions (HieroAction's and KEPT's) and their weights.
- :mod:`kept.grpo.model`: loading Qwen2.5-VL and its processor (without torchvision), LoRA.
- :mod:`kept.grpo.train`: ``kept sft`` and ``kept grpo`` on TRL's trainers.
- :mod:`kept.grpo.generate` and :mod:`kept.grpo.evaluate`: ``kept grpo eval``, answer metrics
  through the project's metrics code, and the position-bias audit.
- :mod:`kept.grpo.tiny`: a tiny random Qwen2.5-VL for offline smoke tests.

The pure parts (answer, rewards, evaluate) import nothing heavy. Import the submodules directly.
"""

__all__: list[str] = []
