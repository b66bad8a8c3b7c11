"""A deterministic generator of demo data in the ADR format (keypoint-folder layout).

The real ADR dataset (KEPT paper: Ego-Exo4D sports recordings with expert scores 1-10, expert
commentary and LLM difference descriptions of pairs within a sub-activity) is licensed. This
package simulates data of the same shape with real kinematic content, so that every part of the
library can be run and tested end to end::

    <out>/dataset.json        name, fps, score_range [1, 10], skeleton coco17, up_axis y, generator
    <out>/samples.csv         id,split,category,score,subject,commentary,sport
    <out>/keypoints/<id>.npy  float32 (frames, 17, 3), metres, +y up, NaN for dropped joints
    <out>/pairs.csv           id_a,id_b,split,description (all unordered pairs per sub-activity
                              and split)
    <out>/faults.json         {id: [{node_type, phase, t_start, t_end, magnitude, kind, side}]}

``t_start``/``t_end`` in ``faults.json`` are fractions of the recording's duration (segment k of
K covers [k/K, (k+1)/K)), measured where the fault changes the joint-angle trajectories by at
least 30 % of its peak change (see :func:`simulate_recording`).

Modules:

- :mod:`~kept.data.demo.activities`: the sub-activities, trajectory channels, simulation knobs
  and the phase templates (key poses) of each sub-activity.
- :mod:`~kept.data.demo.faults`: the technique-fault catalogue, fault sampling and scores.
- :mod:`~kept.data.demo.body`: the simulated person and the forward-kinematic body.
- :mod:`~kept.data.demo.recording`: simulation of one recording (key poses, style, faults,
  camera, sensor noise and dropped joints).
- :mod:`~kept.data.demo.text`: wording of the commentary and pair descriptions.
- :mod:`~kept.data.demo.generate`: writing a whole dataset, and reading its faults back.
"""

from kept.data.demo.activities import ADR_SUBACTIVITIES, GENERATOR_VERSION
from kept.data.demo.faults import FAULT_CATALOGUE, sample_faults, score_from_faults
from kept.data.demo.generate import generate_demo, load_faults
from kept.data.demo.recording import SimulatedRecording, simulate_recording
from kept.data.demo.text import make_commentary, make_pair_description

__all__ = [
    "ADR_SUBACTIVITIES",
    "FAULT_CATALOGUE",
    "GENERATOR_VERSION",
    "SimulatedRecording",
    "generate_demo",
    "load_faults",
    "make_commentary",
    "make_pair_description",
    "simulate_recording",
    "sample_faults",
    "score_from_faults",
]
