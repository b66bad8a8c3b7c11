"""KEPT's score branch, wired as METHOD.md sections 2 to 6 read.

    f_V   = E_V(keyframes)                                  visual tokens           (R, N, D)
    Q     = ScoreNet(f_M, f_V)                              all B^K path values     (R, T)
    f'_M  = sum_i w_i F_M(f_M(l_i)),  l_i in top-k(Q)       reasoning-path tokens   (R, N, D)
    f_VM  = MHCA(f_V, f'_M)    [+ L_semantic with f_C]      expert alignment        (R, N, D)
    f'_K  = MHCA(F_K(segment trajectories), f_VM)           knowledge-enhanced keypoints (R, K, P, D)
    H     = GCN_IKG(GCN_skeleton(f'_K))                     keypoint graph embedding (R, K, P, D)
    s_hat = mean_k FC(mean_P H[k])                          normalised score        (R,)

The model is a plain ``nn.Module``; losses, optimisers and logging live in
:class:`kept.system.KEPTSystem`. Shapes glossary: R recordings, N keyframes, P joints,
B node types, K segments, T = B^K paths, D width, E sentence-embedding size, C IKG candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from kept.config import ModelConfig
from kept.features import JOINT_CHANNELS, RecordingFeatures
from kept.model.alignment import ExpertAlignment
from kept.model.encoder import KeypointEncoder
from kept.model.ikg import KeypointGraphNet, candidate_pairs
from kept.model.layers import MLP, CrossAttention
from kept.model.score_net import ScoreNet
from kept.model.tree import PathSelection, mixture_tokens, path_distribution, select_paths
from pose.skeleton import Skeleton

__all__ = ["KEPT", "KEPTOutput"]


@dataclass
class KEPTOutput:
    """What one forward pass returns.

    Shapes:
        score: (R,) predicted score, normalised to [0, 1] by the dataset's score range
        logits: (R, T) pre-sigmoid Q(l) of every path (``model.paths`` order)
        path_dist: (R, T) p_r, the normalised path values
        selection: paths used (top-k mixture in training, l* in eval)
        semantic: (R,) L_semantic per recording, or None without commentary
        graph: (R, K, P, D) H per segment (f'_K when the GNN is off)
        ikg_weight: (R, K, C) implicit edge weights, or None when the GNN is off
    """

    score: torch.Tensor
    logits: torch.Tensor
    path_dist: torch.Tensor
    selection: PathSelection
    semantic: torch.Tensor | None
    graph: torch.Tensor
    ikg_weight: torch.Tensor | None


class KEPT(nn.Module):
    """Keypoint-guided tree search: scores of recordings, and the reasoning path behind them.

    Args:
        skeleton (Skeleton): joints, bones and node types.
        cfg (ModelConfig): sizes and ablation switches.
        num_keyframes (int): N.
        segment_samples (int): S, samples per segment trajectory (F_K's input is 4 S per joint).
        commentary_dim (int): E (384 for all-MiniLM-L6-v2).
        encoder (nn.Module, optional): E_V mapping ``features.frames`` (R, N, P, 4) to (R, N, D);
            default :class:`KeypointEncoder`.
    """

    def __init__(self, skeleton: Skeleton, cfg: ModelConfig, num_keyframes: int, segment_samples: int,
                 commentary_dim: int = 384, encoder: nn.Module | None = None):
        super().__init__()
        D, P = cfg.dim, skeleton.num_joints
        self.cfg = cfg
        self.node_names = skeleton.node_names
        self.joints = skeleton.joints
        self.encoder = encoder or KeypointEncoder(P, JOINT_CHANNELS, num_keyframes, D, cfg.dropout)
        self.score_net = ScoreNet(5 * skeleton.max_joints_per_node, len(skeleton.node_types),
                                  cfg.depth, num_keyframes, D, cfg.heads, cfg.dropout)
        self.alignment = ExpertAlignment(D, cfg.heads, commentary_dim, cfg.dropout)
        self.f_k = MLP(JOINT_CHANNELS * segment_samples, D, dropout=cfg.dropout)  # F_K
        self.joint_embedding = nn.Parameter(torch.zeros(P, D))
        self.keypoint_attention = CrossAttention(D, cfg.heads, cfg.dropout)
        bones = torch.as_tensor(skeleton.edge_index())
        self.gnn = (KeypointGraphNet(D, bones, candidate_pairs(skeleton.adjacency()), cfg.ikg_threshold)
                    if cfg.use_gnn else None)
        self.score_head = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, 1))  # FC
        # The text branch (METHOD.md section 7), attached when a run trains it: a
        # kept.model.decoder.DifferenceDecoder reading H of two recordings. Not used by forward.
        self.decoder: nn.Module | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.joint_embedding, std=0.02)

    @property
    def paths(self) -> torch.Tensor:
        """All paths as node indices per level. Shapes: (T, K)"""
        return self.score_net.paths

    def forward(self, x: RecordingFeatures, commentary: torch.Tensor | None = None) -> KEPTOutput:
        """Run the score branch.

        Args:
            x: batched inputs (see :class:`kept.features.RecordingFeatures`).
            commentary: (R, E) sentence embeddings of the expert commentary, or None. Ignored
                when ``cfg.use_commentary`` is False.
        """
        f_v = self.encoder(x.frames)  # (R, N, D)
        logits, node_tokens = self.score_net(x.node_stats, f_v)  # (R, T), (R, N, B, D)
        selection = select_paths(logits, self.cfg.top_k, self.cfg.mixture_temperature, self.training)
        chosen = self.paths[selection.index]  # (R, k, K)
        f_m = mixture_tokens(node_tokens, chosen, selection.weight, self.score_net.segment)  # (R, N, D): f'_M

        use_c = commentary is not None and self.cfg.use_commentary
        f_vm, semantic = self.alignment(f_v, f_m, commentary if use_c else None)

        R, K, P, _ = x.segments.shape
        f_k = self.f_k(x.segments) + self.joint_embedding  # (R, K, P, D)
        f_k = self.keypoint_attention(f_k.reshape(R, K * P, -1), f_vm).reshape(R, K, P, -1)  # f'_K
        if self.gnn is not None:
            graph, ikg = self.gnn(f_k.reshape(R * K, P, -1))
            graph, ikg = graph.reshape(R, K, P, -1), ikg.reshape(R, K, -1)
        else:
            graph, ikg = f_k, None
        score = self.score_head(graph.mean(dim=2)).squeeze(-1).mean(dim=1)  # (R,)
        return KEPTOutput(score=score, logits=logits, path_dist=path_distribution(logits),
                          selection=selection, semantic=semantic, graph=graph, ikg_weight=ikg)
