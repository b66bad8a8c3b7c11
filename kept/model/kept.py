"""KEPT's score branch, wired as docs/method.md sections 2 to 6 read.

    f_V   = E_V(keyframes)                                  visual tokens           (R, N, D)
    Q     = ScoreNet(f_M, f_V)                              all B^K path values     (R, T)
            (or the L paths a beam search / MCTS finds, model.search)             (R, L)
    f'_M  = sum_i w_i F_M(f_M(l_i)),  l_i in top-k(Q)       reasoning-path tokens   (R, N, D)
    f_VM  = MHCA(f_V, f'_M)    [+ L_semantic with f_C]      expert alignment        (R, N, D)
    f'_K  = MHCA(F_K(segment trajectories), f_VM)           knowledge-enhanced keypoints (R, K, P, D)
    H     = GCN_IKG(GCN_skeleton(f'_K))                     keypoint graph embedding (R, K, P, D)
    s_net = mean_k FC(mean_P H[k])                          the network's score     (R,)
    s_hat = s_stats + w s_net   (statistics branch on)      normalised score        (R,)
            ((1 - w) s_stats + w s_net with model.stats_mode=blend; s_net alone in training)
            s_net               (model.stats_branch=false, the paper's reading)

*Decision* (``model.stats_branch``, kept/model/stats_branch.py): s_stats is a frozen per-category
ridge on the block statistics of every (segment, node); the network learns its residual, and w
(``net_weight``) is chosen on the validation split after training. The statistics branch's
per-block contributions c[k, j] enter the score net as one more channel of each node token (the
block's standardised penalty -c[k, j]), and teach the path values (``loss.path`` in kept.system).

The model is a plain ``nn.Module``; losses, optimisers and logging live in
:class:`kept.system.KEPTSystem`. Shapes glossary: R recordings, N keyframes, P joints,
B node types, K segments, T = B^K paths, D width, E sentence-embedding size, C IKG candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from kept.config import ModelConfig
from kept.features import ALIGN_SAMPLES, BLOCK_STATS, JOINT_CHANNELS, RecordingFeatures, alignment_channels
from kept.model.alignment import ExpertAlignment
from kept.model.alignment_stats import AlignedStatistics
from kept.model.encoder import KeypointEncoder
from kept.model.ikg import KeypointGraphNet, candidate_pairs
from kept.model.layers import MLP, CrossAttention
from kept.model.score_net import ScoreNet
from kept.model.search import path_logits, search
from kept.model.stats_branch import StatsBranch
from kept.model.tree import PathSelection, gather_paths, mixture_tokens, path_distribution, select_paths
from pose.skeleton import Skeleton

__all__ = ["KEPT", "KEPTOutput"]


@dataclass
class KEPTOutput:
    """What one forward pass returns.

    With ``model.search=exhaustive`` the candidates are all T = B^K paths, in ``model.paths``
    order for every recording (``paths`` is an expanded view); with ``beam`` or ``mcts`` they are
    the L = ``search_top`` best paths the search found for each recording, best first.

    Shapes:
        score: (R,) predicted score, normalised to [0, 1] by the dataset's score range
        logits: (R, L) pre-sigmoid Q(l) of every candidate path
        paths: (R, L, K) the candidate paths (node index per level) that ``logits`` score
        path_dist: (R, L) p_r, the normalised path values over the candidates
        selection: candidates used (indices into L: top-k mixture in training, l* in eval)
        best_path: (R, K) l*, the best candidate
        blocks: (R, K, B, D) the score net's block vectors (kept.model.search scores any path from them)
        semantic: (R,) L_semantic per recording, or None without commentary
        graph: (R, K, P, D) H per segment (f'_K when the GNN is off)
        ikg_weight: (R, K, C) implicit edge weights, or None when the GNN is off
        net_score: (R,) s_net, the network's part of the score
        stats_score: (R,) s_stats, or None without the statistics branch
        contrib: (R, K, B) the statistics branch's contribution of every block, or None
    """

    score: torch.Tensor
    logits: torch.Tensor
    paths: torch.Tensor
    path_dist: torch.Tensor
    selection: PathSelection
    best_path: torch.Tensor
    blocks: torch.Tensor
    semantic: torch.Tensor | None
    graph: torch.Tensor
    ikg_weight: torch.Tensor | None
    net_score: torch.Tensor | None = None
    stats_score: torch.Tensor | None = None
    contrib: torch.Tensor | None = None


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
        categories (Sequence[str], optional): category names of the statistics branch (built
            when ``cfg.stats_branch``; fit it with ``model.stats.fit(...)`` before training).
    """

    def __init__(self, skeleton: Skeleton, cfg: ModelConfig, num_keyframes: int, segment_samples: int,
                 commentary_dim: int = 384, encoder: nn.Module | None = None,
                 categories: Sequence[str] = ()):
        super().__init__()
        D, P = cfg.dim, skeleton.num_joints
        self.cfg = cfg
        self.node_names = skeleton.node_names
        self.joints = skeleton.joints
        self.encoder = encoder or KeypointEncoder(P, JOINT_CHANNELS, num_keyframes, D, cfg.dropout)
        # with the statistics branch, each node token also carries the block's standardised
        # penalty -c[k, j] (one more channel), so the path values can see where the score is lost
        self.score_net = ScoreNet(5 * skeleton.max_joints_per_node + int(cfg.stats_branch), len(skeleton.node_types),
                                  cfg.depth, num_keyframes, D, cfg.heads, cfg.dropout)
        self.alignment = ExpertAlignment(D, cfg.heads, commentary_dim, cfg.dropout)
        self.f_k = MLP(JOINT_CHANNELS * segment_samples, D, dropout=cfg.dropout)  # F_K
        self.joint_embedding = nn.Parameter(torch.zeros(P, D))
        self.keypoint_attention = CrossAttention(D, cfg.heads, cfg.dropout)
        bones = torch.as_tensor(skeleton.edge_index())
        self.gnn = (KeypointGraphNet(D, bones, candidate_pairs(skeleton.adjacency()), cfg.ikg_threshold)
                    if cfg.use_gnn else None)
        self.score_head = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, 1))  # FC
        node_joints = len(dict.fromkeys(j for m in skeleton.node_types.values() for j in m))
        self.stats = (StatsBranch(categories, cfg.depth, len(skeleton.node_types),
                                  len(BLOCK_STATS) * skeleton.max_joints_per_node,
                                  whole_dim=4 * (node_joints + skeleton.num_joints),
                                  aligned=(AlignedStatistics(categories, ALIGN_SAMPLES, alignment_channels(skeleton),
                                                             cfg.depth) if cfg.stats_aligned else None),
                                  channel_joints=_channel_joints(skeleton) if cfg.stats_aligned else ())
                      if cfg.stats_branch else None)
        #: w, the weight of s_net next to s_stats at inference (chosen on val after training)
        self.register_buffer("net_weight", torch.ones(()))
        # The text branch (docs/method.md section 7), attached when a run trains it: a
        # kept.model.decoder.DifferenceDecoder reading H of two recordings. Not used by forward.
        self.decoder: nn.Module | None = None
        #: kept.model.memory.DescriptionMemory: the described training pairs (text.generator=retrieval)
        self.memory: nn.Module | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.joint_embedding, std=0.02)

    @property
    def paths(self) -> torch.Tensor:
        """All paths as node indices per level. Shapes: (T, K)"""
        return self.score_net.paths

    def forward(self, x: RecordingFeatures, commentary: torch.Tensor | None = None,
                category: torch.Tensor | None = None, prior: torch.Tensor | None = None) -> KEPTOutput:
        """Run the score branch.

        Args:
            x: batched inputs (see :class:`kept.features.RecordingFeatures`).
            commentary: (R, E) sentence embeddings of the expert commentary, or None. Ignored
                when ``cfg.use_commentary`` is False.
            category: (R,) category index of each recording for the statistics branch (-1 or
                None: unknown, the global model).
            prior: (R,) s_stats to use instead of the branch's own prediction (training passes
                out-of-fold predictions, see :meth:`StatsBranch.fit`).
        """
        R = x.node_stats.shape[0]
        stats = contrib = None
        node_stats = x.node_stats
        if self.stats is not None:
            if x.block_stats is None:
                raise ValueError("the statistics branch needs RecordingFeatures.block_stats "
                                 "(computed by kept.features.recording_features)")
            if category is None:
                category = torch.full((R,), -1, dtype=torch.long, device=node_stats.device)
            stats, contrib = self.stats(x.block_stats, category, x.whole_stats, x.curves, x.duration)  # (R,), (R, K, B)
            pen = -contrib / contrib.flatten(1).std(dim=1).clamp(min=1e-8)[:, None, None]
            node_stats = torch.cat([node_stats, pen[:, self.score_net.segment].unsqueeze(-1)], dim=-1)
        f_v = self.encoder(x.frames)  # (R, N, D)
        blocks, node_tokens = self.score_net.blocks(node_stats, f_v)  # (R, K, B, D), (R, N, B, D)
        logits, paths = self.path_values(blocks)  # (R, L), (R, L, K)
        selection = select_paths(logits, self.cfg.top_k, self.cfg.mixture_temperature, self.training)
        chosen = gather_paths(paths, selection.index)  # (R, k, K)
        f_m = mixture_tokens(node_tokens, chosen, selection.weight, self.score_net.segment)  # (R, N, D): f'_M

        use_c = commentary is not None and self.cfg.use_commentary
        f_vm, semantic = self.alignment(f_v, f_m, commentary if use_c else None)

        _, K, P, _ = x.segments.shape
        f_k = self.f_k(x.segments) + self.joint_embedding  # (R, K, P, D)
        f_k = self.keypoint_attention(f_k.reshape(R, K * P, -1), f_vm).reshape(R, K, P, -1)  # f'_K
        if self.gnn is not None:
            graph, ikg = self.gnn(f_k.reshape(R * K, P, -1))
            graph, ikg = graph.reshape(R, K, P, -1), ikg.reshape(R, K, -1)
        else:
            graph, ikg = f_k, None
        net = self.score_head(graph.mean(dim=2)).squeeze(-1).mean(dim=1)  # (R,): s_net
        score = net
        if self.stats is not None:
            if prior is not None:
                stats = prior
            if self.cfg.stats_mode == "residual":
                score = stats + self.net_weight * net
            elif not self.training:  # blend: the network learns the score itself
                score = (1 - self.net_weight) * stats + self.net_weight * net
        return KEPTOutput(score=score, logits=logits, paths=paths, path_dist=path_distribution(logits),
                          selection=selection, best_path=chosen[:, 0], blocks=blocks, semantic=semantic,
                          graph=graph, ikg_weight=ikg, net_score=net, stats_score=stats, contrib=contrib)

    def path_values(self, blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q logits of the candidate paths: all B^K (exhaustive) or those a search finds.

        The search itself (discrete) runs without gradient; the logits of the paths it returns
        are then computed from ``blocks`` with gradient, so the score net trains as in the
        exhaustive form.

        Shapes:
            blocks: (R, K, B, D)
            returns: ``(logits (R, L), paths (R, L, K))``
        """
        cfg = self.cfg
        if cfg.search == "exhaustive":
            logits = self.score_net.assemble(blocks)  # (R, T)
            return logits, self.paths.unsqueeze(0).expand(blocks.shape[0], -1, -1)
        with torch.no_grad():
            found = search(self.score_net, blocks.detach(), cfg.search, top_k=max(cfg.search_top, cfg.top_k),
                           beam_width=cfg.beam_width, simulations=cfg.mcts_simulations, c_uct=cfg.mcts_c)
        return path_logits(self.score_net, blocks, found.top_paths), found.top_paths

    def pair_distributions(self, out: KEPTOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """The path distributions of the two recordings of each pair on a common support, for L_KL.

        The batch holds recordings a of every pair first, then recordings b. Exhaustively the
        support is all T paths. After a search, *decision*: it is the union of the two
        recordings' candidate lists (2L paths; a path both found appears twice, in both
        distributions alike), re-scored for each recording from its blocks.

        Shapes:
            returns: ``(p_a (R/2, L'), p_b (R/2, L'))``, L' = T or 2L
        """
        half = out.logits.shape[0] // 2
        if self.cfg.search == "exhaustive":
            return out.path_dist[:half], out.path_dist[half:]
        union = torch.cat([out.paths[:half], out.paths[half:]], dim=1)  # (R/2, 2L, K)
        dist = path_distribution(path_logits(self.score_net, out.blocks, torch.cat([union, union])))
        return dist[:half], dist[half:]


def _channel_joints(skeleton: Skeleton) -> list[tuple[int, int]]:
    """(node type, joint within it) of each channel of :func:`kept.features.alignment_curves`:
    a node joint's angle is that joint's; a limb end's height belongs to the node joint whose
    angle it ends (the wrist to the elbow); the centre height to none, (-1, -1)."""
    place = {j: (b, i) for b, members in enumerate(skeleton.node_types.values()) for i, j in enumerate(members)}
    end_of = {e: place[j] for j in place for e in skeleton.angles[j] if e not in place}
    return [place.get(c) or end_of.get(c) or (-1, -1) for c in alignment_channels(skeleton)]
