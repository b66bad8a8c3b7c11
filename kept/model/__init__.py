"""The KEPT model: small modules wired by :class:`kept.model.kept.KEPT`."""

from kept.model.kept import KEPT, KEPTOutput

__all__ = ["KEPT", "KEPTOutput"]
