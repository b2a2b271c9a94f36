"""The DPO family of losses, laid out like TRL's ``dpo_loss`` so variants port over line by line.

Inputs are summed log-probabilities of the completion tokens (the chosen / rejected step for Step-DPO, the
whole solution for DPO) under the policy and the reference.  ``logits = (pi_c - pi_r) - (ref_c - ref_r)``.

- ``sigmoid`` (DPO, Rafailov et al.): ``-log sigmoid(beta * logits)``, with conservative label smoothing
  ``ls``: ``-(1 - ls) log sigmoid(beta * logits) - ls * log sigmoid(-beta * logits)``.
- ``ipo`` (Azar et al.): ``(logits - 1 / (2 * beta))^2`` on length-averaged log-probs (the caller averages).
- ``dpop`` (DPO-Positive, Pal et al. 2024): ``-log sigmoid(beta * (logits - lam * max(0, ref_c - pi_c)))``.
  Pairs that differ in a token or two (a wrong digit in one step: Step-DPO's typical pair) let plain DPO widen
  the margin by pushing *both* completions down; the penalty stops the chosen one from falling below the
  reference.
- ``nll``: ``-policy_chosen`` on length-averaged log-probs (the caller averages): no preference at all, the
  *control* that separates "more likelihood on correct steps" from "push down the wrong ones".  On Step-DPO
  pairs it is NLL on the chosen step only; on DPO pairs whose chosen side is a gold solution, continued SFT.

Rewards are ``beta * (policy - reference)`` log-prob differences, detached, as TRL logs them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSS_TYPES = ("sigmoid", "ipo", "dpop", "nll")


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    loss_type: str = "sigmoid",
    dpop_lambda: float = 50.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example losses, chosen rewards and rejected rewards."""
    logits = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing
    elif loss_type == "dpop":
        penalty = torch.clamp(ref_chosen - policy_chosen, min=0)
        losses = -F.logsigmoid(beta * (logits - dpop_lambda * penalty))
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    elif loss_type == "nll":
        losses = -policy_chosen
    else:
        raise ValueError(f"unknown loss_type {loss_type!r}; choose from {', '.join(LOSS_TYPES)}")
    chosen_rewards = beta * (policy_chosen - ref_chosen).detach()
    rejected_rewards = beta * (policy_rejected - ref_rejected).detach()
    return losses, chosen_rewards, rejected_rewards
