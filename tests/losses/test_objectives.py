"""Each distillation objective against a hand computation in plain Python (math, lists), and
the rules every objective shares: a baseline is cross-entropy, masks select rows, per-image sums."""

import math

import pytest
import torch
from torch.nn import functional as F

from qkd_pl.config import DistillConfig
from qkd_pl.losses import OBJECTIVES, distillation_loss

S = [[1.0, 0.0, -1.0, 0.5], [0.5, 0.5, 0.0, -2.0], [-1.0, 2.0, 0.3, 0.0]]
T_ = [[3.0, 0.0, 0.0, 1.0], [0.0, 1.0, 2.0, 0.0], [0.5, 0.5, -1.0, 2.0]]
Y = [0, 2, 1]


def softmax(v, t=1.0):
    e = [math.exp(a / t) for a in v]
    return [a / sum(e) for a in e]


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def mean(v):
    return sum(v) / len(v)


def pearson(a, b):
    ma, mb = mean(a), mean(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))


def ce(rows=S, labels=Y):
    return mean([-math.log(softmax(r)[y]) for r, y in zip(rows, labels)])


def hinton_kl(temp, s=S, t=T_):
    return mean([kl(softmax(tr, temp), softmax(sr, temp)) for sr, tr in zip(s, t)])


def standardized(v):
    m = mean(v)
    sd = math.sqrt(sum((a - m) ** 2 for a in v) / (len(v) - 1))  # torch.std: the unbiased estimate
    return [(a - m) / sd for a in v]


def dist_terms(temp):
    ps = [softmax(r, temp) for r in S]
    pt = [softmax(r, temp) for r in T_]
    inter = mean([1 - pearson(a, b) for a, b in zip(ps, pt)])
    intra = mean([1 - pearson([r[c] for r in ps], [r[c] for r in pt]) for c in range(4)])
    return inter, intra


def dkd_terms(temp):
    tckd, nckd = [], []
    for sr, tr, y in zip(S, T_, Y):
        ps, pt = softmax(sr, temp), softmax(tr, temp)
        bs, bt = [ps[y], 1 - ps[y]], [pt[y], 1 - pt[y]]
        tckd.append(kl(bt, bs))
        keep = [c for c in range(4) if c != y]
        nckd.append(kl(softmax([tr[c] for c in keep], temp), softmax([sr[c] for c in keep], temp)))
    return mean(tckd), mean(nckd)


def expected(name, temp, alpha, **w):
    a2 = alpha * temp * temp
    if name == "hinton":
        return ce() + a2 * hinton_kl(temp)
    if name == "hinton-classic":
        return (1 - alpha) * ce() + a2 * hinton_kl(temp)
    if name == "lskd":
        return ce() + a2 * hinton_kl(temp, [standardized(r) for r in S], [standardized(r) for r in T_])
    if name == "dist":
        inter, intra = dist_terms(temp)
        return ce() + a2 * (w["dist_beta"] * inter + w["dist_gamma"] * intra)
    tckd, nckd = dkd_terms(temp)
    return ce() + a2 * (tckd + w["dkd_beta"] * nckd)


@pytest.mark.parametrize("name", list(OBJECTIVES))
@pytest.mark.parametrize("temp,alpha", [(1.0, 0.5), (2.0, 0.7), (4.0, 1.0)])
def test_each_objective_matches_its_hand_computation(name, temp, alpha):
    w = dict(dist_beta=1.5, dist_gamma=0.5, dkd_beta=8.0)
    cfg = DistillConfig(teacher="t", temperature=temp, alpha=alpha, kd_loss=name, **w)
    loss, _ = distillation_loss(torch.tensor(S), torch.tensor(Y), torch.tensor(T_), cfg)
    assert loss.item() == pytest.approx(expected(name, temp, alpha, **w), rel=1e-5)


def test_without_a_teacher_it_is_cross_entropy():
    loss, parts = distillation_loss(torch.tensor(S), torch.tensor(Y))
    assert loss.item() == pytest.approx(ce(), rel=1e-6) and parts["kd"] == 0.0


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_a_student_equal_to_its_teacher_has_no_teacher_term(name):
    s = torch.tensor(S)
    _, parts = distillation_loss(s, torch.tensor(Y), s.clone(), DistillConfig(kd_loss=name))
    assert abs(parts["kd"]) < 1e-5


def test_the_notebooks_formulation_is_the_same_number():
    # The notebooks used KLDivLoss's element-wise mean times the number of classes C.
    s, t = torch.randn(5, 6), torch.randn(5, 6)
    y = torch.randint(0, 6, (5,))
    notebook = F.cross_entropy(s, y) + F.kl_div(F.log_softmax(s / 3, 1), F.softmax(t / 3, 1)) * 9 * 6 * 0.9
    ours, _ = distillation_loss(s, y, t, DistillConfig(kd_loss="hinton", temperature=3.0, alpha=0.9))
    assert torch.isclose(ours, notebook, atol=1e-5)


def test_masks_choose_the_rows_of_each_term_and_every_image_counts_once():
    """Rows 0-1 labelled (CE and teacher term), row 2 a transfer image (teacher term only): the
    loss is the sum of each row's own terms over the batch size."""
    cfg = DistillConfig(kd_loss="hinton", temperature=2.0, alpha=0.5)
    hard, soft = torch.tensor([True, True, False]), torch.tensor([True, True, True])
    loss, _ = distillation_loss(torch.tensor(S), torch.tensor(Y), torch.tensor(T_), cfg, hard, soft)
    rows_ce = sum(-math.log(softmax(r)[y]) for r, y in zip(S[:2], Y[:2]))
    rows_kd = sum(kl(softmax(t, 2.0), softmax(s, 2.0)) for s, t in zip(S, T_))
    assert loss.item() == pytest.approx((rows_ce + 0.5 * 4 * rows_kd) / 3, rel=1e-5)
    # pseudo-labels: row 2's label (the teacher's top class) enters the CE, and no teacher term
    pseudo, _ = distillation_loss(torch.tensor(S), torch.tensor(Y), torch.tensor(T_), cfg,
                                  torch.ones(3, dtype=torch.bool), torch.tensor([True, True, False]))
    rows_kd = sum(kl(softmax(t, 2.0), softmax(s, 2.0)) for s, t in zip(S[:2], T_[:2]))
    assert pseudo.item() == pytest.approx((ce() * 3 + 0.5 * 4 * rows_kd) / 3, rel=1e-5)


def test_gradient_flows_through_every_teacher_term():
    for name in OBJECTIVES:
        s = torch.tensor(S, requires_grad=True)
        loss, _ = distillation_loss(s, torch.tensor(Y), torch.tensor(T_), DistillConfig(kd_loss=name, alpha=1.0))
        g = torch.autograd.grad(loss, s)[0]
        g_ce = torch.autograd.grad(F.cross_entropy(s, torch.tensor(Y)), s)[0]
        assert torch.isfinite(g).all() and not torch.allclose(g, g_ce), name
