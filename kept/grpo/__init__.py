"""GRPO fine-tuning of a vision-language model (Qwen2.5-VL) for action difference reasoning.

The pure parts import nothing heavy: :mod:`kept.grpo.answer` (the stepwise answer format),
:mod:`kept.grpo.rewards` (TRL reward functions) and :mod:`kept.grpo.evaluate` (answer metrics and
the position-bias audit). Import the submodules directly.
"""

__all__: list[str] = []
