"""Keypoint sequences of named skeletons and their kinematics."""

from pose.kinematics import node_kinematics
from pose.skeleton import BUILTIN_SKELETONS, Skeleton, get_skeleton

__all__ = ["Skeleton", "BUILTIN_SKELETONS", "get_skeleton", "node_kinematics"]
