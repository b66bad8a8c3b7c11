"""Explanations of a comparison: the physical-difference report, the comparison itself, plots."""
