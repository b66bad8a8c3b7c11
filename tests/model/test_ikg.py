import numpy as np
import torch

from kept.model.ikg import ImplicitKnowledgeGraph, KeypointGraphNet, candidate_pairs


def _chain(P):
    adj = np.zeros((P, P), dtype=np.float32)
    for i in range(P - 1):
        adj[i, i + 1] = adj[i + 1, i] = 1
    bones = torch.as_tensor(np.stack(np.nonzero(adj)), dtype=torch.long)
    return adj, bones


def test_candidates_exclude_bones_and_self():
    adj, _ = _chain(4)
    assert candidate_pairs(adj).tolist() == [[0, 2], [0, 3], [1, 3]]


def test_ikg_weights_are_symmetric_thresholded_and_scaled():
    torch.manual_seed(0)
    adj, _ = _chain(5)
    ikg = ImplicitKnowledgeGraph(8, candidate_pairs(adj), threshold=1.0)
    x = torch.randn(3, 5, 8)
    weight, prob = ikg(x)
    assert weight.shape == prob.shape == (3, 6)
    torch.testing.assert_close(prob.sum(-1), torch.ones(3))
    kept = weight > 0
    assert torch.equal(kept, prob >= 1.0 / 6)
    torch.testing.assert_close(weight.max(-1).values, torch.ones(3))
    # symmetric: listing every candidate edge as (j, i) instead of (i, j) changes nothing
    import copy

    flipped = copy.deepcopy(ikg)
    flipped.candidates.copy_(ikg.candidates.flip(-1))
    weight_f, prob_f = flipped(x)
    torch.testing.assert_close(prob_f, prob)
    torch.testing.assert_close(weight_f, weight)


def test_zero_weight_edges_equal_removed_edges():
    """Dropped IKG edges carry weight 0: the GCN must then equal a graph without them."""
    from torch_geometric.nn import GCNConv

    torch.manual_seed(0)
    conv = GCNConv(4, 4)
    x = torch.randn(4, 4)
    full = torch.tensor([[0, 2, 1, 3], [2, 0, 3, 1]])
    weight = torch.tensor([0.5, 0.5, 0.0, 0.0])
    torch.testing.assert_close(conv(x, full, weight), conv(x, full[:, :2], weight[:2]))


def test_phi_receives_gradient_through_the_graph_net():
    torch.manual_seed(0)
    adj, bones = _chain(6)
    net = KeypointGraphNet(8, bones, candidate_pairs(adj))
    h, weight = net(torch.randn(2, 6, 8))
    assert h.shape == (2, 6, 8) and weight.shape == (2, 10)
    h.pow(2).sum().backward()
    # weight matrices: phi's last bias shifts every candidate alike, which the softmax ignores
    grads = [p.grad for p in net.ikg.phi.parameters() if p.dim() > 1]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
