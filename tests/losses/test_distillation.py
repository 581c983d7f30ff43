import math

import torch
from torch.nn import functional as F

from qkd_pl.losses import distillation_loss


def test_without_teacher_it_is_cross_entropy():
    s = torch.randn(6, 4)
    y = torch.randint(0, 4, (6,))
    loss, parts = distillation_loss(s, y)
    assert torch.isclose(loss, F.cross_entropy(s, y)) and parts["kd"] == 0.0


def test_kd_term_vanishes_when_student_equals_teacher():
    s = torch.randn(6, 4)
    y = torch.randint(0, 4, (6,))
    loss, parts = distillation_loss(s, y, s.clone(), temperature=3.0, alpha=0.9)
    assert abs(parts["kd"]) < 1e-7
    assert torch.isclose(loss, F.cross_entropy(s, y), atol=1e-6)


def test_matches_a_hand_computation():
    s = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    t = torch.tensor([[3.0, 0.0, 0.0], [0.0, 1.0, 2.0]])
    y = torch.tensor([0, 2])
    T, alpha = 2.0, 0.7

    def softmax(v):
        e = [math.exp(a) for a in v]
        return [a / sum(e) for a in e]

    ce = sum(-math.log(softmax(row)[lab]) for row, lab in zip(s.tolist(), y.tolist())) / 2
    kl = 0.0
    for srow, trow in zip(s.tolist(), t.tolist()):
        p = softmax([a / T for a in trow])
        q = softmax([a / T for a in srow])
        kl += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    expected = ce + alpha * T * T * kl / 2
    loss, _ = distillation_loss(s, y, t, temperature=T, alpha=alpha)
    assert abs(loss.item() - expected) < 1e-5


def test_notebook_formulation_is_the_same_number():
    # The notebooks used KLDivLoss's element-wise mean times the number of classes C.
    s, t = torch.randn(5, 6), torch.randn(5, 6)
    y = torch.randint(0, 6, (5,))
    T, alpha = 3.0, 0.9
    notebook = F.cross_entropy(s, y) + F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1)) * T * T * 6 * alpha
    ours, _ = distillation_loss(s, y, t, temperature=T, alpha=alpha)
    assert torch.isclose(ours, notebook, atol=1e-5)


def test_gradient_flows_through_the_kd_term():
    s = torch.randn(4, 3, requires_grad=True)
    y = torch.randint(0, 3, (4,))
    t = torch.randn(4, 3)
    with_kd, _ = distillation_loss(s, y, t, alpha=1.0)
    g_kd = torch.autograd.grad(with_kd, s)[0]
    g_ce = torch.autograd.grad(F.cross_entropy(s, y), s)[0]
    assert not torch.allclose(g_kd, g_ce)
