"""The optimizer and learning-rate schedule a ``TrainConfig`` names."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torch.optim.optimizer import _get_scalar_dtype

from ..config import TrainConfig

WARMUP = 0.25  # fraction of the steps spent rising to the peak learning rate


def make_optimizer(model: nn.Module | Iterable[torch.Tensor], cfg: TrainConfig,
                   steps_per_epoch: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """Adam (the paper's) or SGD with Nesterov momentum, and the schedule stepped after every batch.

    Args:
        model: whose parameters to optimize (or the parameters themselves: a stacked fit's).
        cfg: optimizer, learning rate, weight decay, schedule and epochs.
        steps_per_epoch: batches per epoch (the one-cycle schedule spans all of them).

    Returns:
        The optimizer, and the scheduler (``None`` for a constant learning rate).
    """
    params = list(model.parameters() if isinstance(model, nn.Module) else model)
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True,
                              weight_decay=cfg.weight_decay)
    else:
        opt = Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "constant":
        return opt, None
    # momentum is not cycled: one schedule for both optimizers, and nothing else to explain
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=WARMUP, anneal_strategy="linear", cycle_momentum=False,
                                                div_factor=25.0, final_div_factor=1e4)
    return opt, sched


class Adam(torch.optim.Adam):
    """``torch.optim.Adam`` with the same arithmetic, its denominator kept in a buffer between steps.

    Why: on the CPU, torch's default (single-tensor) Adam allocates two parameter-sized temporaries
    per parameter per step (``sqrt(v)`` and its quotient). For the FC reduction of a stack of
    students (5 x 256 x 3,072 weights on CIFAR-10) those fresh allocations, not the arithmetic, took
    most of the step. Here ``sqrt``, the division, ``+ eps`` and the update are torch's own
    elementwise ops in torch's order, written into one reused buffer, so the parameters and the
    ``state_dict`` are bit for bit torch's (tests/training/test_optim.py); ``torch.optim.Adam`` loads
    its state and it loads ``torch.optim.Adam``'s. What torch's fast path does not cover (amsgrad,
    maximize, foreach or fused kernels, capturable or differentiable steps, decoupled weight decay,
    complex parameters, tensor learning rates, other devices than the CPU, a closure) goes to
    ``torch.optim.Adam.step`` itself. The price: one more parameter-sized tensor per parameter,
    held for the optimizer's life (Adam's state is two).

    Example:
        >>> opt = Adam(model.parameters(), lr=1e-2)  # then as torch.optim.Adam
    """

    def __init__(self, params, *args, **kwargs):
        super().__init__(params, *args, **kwargs)
        self._denominators: dict[torch.Tensor, torch.Tensor] = {}  # not state: checkpoints stay torch's

    def __setstate__(self, state):  # a copied or unpickled optimizer: torch keeps only its state and groups
        super().__setstate__(state)
        self.__dict__.setdefault("_denominators", {})

    def _plain(self) -> bool:
        for group in self.param_groups:
            if group["amsgrad"] or group["maximize"] or group["capturable"] or group["differentiable"] \
                    or group["foreach"] or group["fused"] or group.get("decoupled_weight_decay") \
                    or any(isinstance(group[k], torch.Tensor) for k in ("lr", "weight_decay", "eps")) \
                    or any(isinstance(b, torch.Tensor) for b in group["betas"]):
                return False
            for p in group["params"]:
                if p.grad is not None and (p.device.type != "cpu" or p.is_complex() or p.grad.is_sparse):
                    return False
        return True

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None or not self._plain():
            # torch's step as its class holds it, less the hook runner that wraps it once any
            # torch.optim.Adam exists: ours (the class attribute) has run the hooks already
            step = torch.optim.Adam.step
            return (step.__wrapped__ if getattr(step, "hooked", False) else step)(self, closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, weight_decay, eps = group["lr"], group["weight_decay"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:  # as torch.optim.Adam._init_group
                    state["step"] = torch.tensor(0.0, dtype=_get_scalar_dtype(), device="cpu")
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                grad, exp_avg, exp_avg_sq, step_t = p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"]
                # torch.optim.adam._single_tensor_adam, its non-capturable branch, op for op
                step_t += 1
                if weight_decay != 0:
                    grad = grad.add(p, alpha=weight_decay)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step = step_t.item()
                bias_correction1 = 1 - beta1 ** step
                bias_correction2 = 1 - beta2 ** step
                step_size = lr / bias_correction1
                bias_correction2_sqrt = bias_correction2 ** 0.5
                denom = self._denominators.get(p)
                if denom is None or (denom.shape, denom.dtype, denom.stride()) != \
                        (exp_avg_sq.shape, exp_avg_sq.dtype, exp_avg_sq.stride()):
                    denom = self._denominators[p] = torch.empty_like(exp_avg_sq)
                torch.sqrt(exp_avg_sq, out=denom)
                denom.div_(bias_correction2_sqrt).add_(eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)
        return None
