"""Learning from drops as well as keeps: the tune objectives shared by the language-model media.

``sft``: plain fine-tuning, the next-token loss on the kept set only (the drops are never seen).

``kto`` (Kahneman-Tversky Optimisation, Ethayarajh et al. 2024): unpaired keep / drop labels, each
candidate alone.  With the starting model (base, or the parent version) as the reference,

    r(x, y) = log pi(y | x) - log pi_ref(y | x)           summed over the candidate's counted tokens
    z0      = max(0, mean of r over the batch), detached    (an estimate of KL(pi || pi_ref))
    kept    y: lambda_D * (1 - sigmoid(beta * (r - z0)))
    dropped y: lambda_U * (1 - sigmoid(beta * (z0 - r)))

so the tune raises what was kept and lowers what was dropped *relative to the starting model*, and a
candidate already far past the reference saturates (the sigmoid flattens) instead of being pushed on:
the anchor against reciting a few kept texts.  z0 here is the detached batch mean of r (a common
simplification of the paper's mismatched-pair estimate).  The weights balance the counts: every batch
draws half its rows from the kept and half from the dropped candidates, so with lambda_D = lambda_U = 1
the paper's ratio lambda_D n_D / (lambda_U n_U) is 1 (its advised range is [1, 4/3]).

``dpo`` (Rafailov et al. 2023): where a prompt has both a kept and a dropped candidate, the pair's
``-log sigmoid(beta * (r_kept - r_dropped))``.

``ipo`` (Azar et al. 2023, identity preference optimisation): the same pairs, ``(r_kept - r_dropped - 1 / (2 beta))^2``:
each pair's margin is drawn to a set size and no further.  dpo's sigmoid only flattens, and an optimiser that
normalises its steps (Adam) keeps pushing a won margin at full stride, past what any pair asked for; ipo's square
turns round at its target.

``sft_weight`` adds, beside either, sft's own loss on the batch's kept candidates (their mean negative log-prob per
counted token): once a pair's margin is won its sigmoid lets go, and what a step then moves is free to carry the
kept candidates down with the drops and the mass to text neither side holds (likelihood displacement, Razin et al.
2024); the kept candidates' own loss keeps pulling toward them (DPO with the chosen side's NLL, Pang et al. 2024's
RPO; the image tune's ``sft_weight`` is the same term in denoising errors).

The reference log-probs are computed once when a task is built, before any step, with the adapter at
its starting weights (a new LoRA adds zero, a parent's adapter is the parent): a resumed tune rebuilds
the task and gets the same numbers.  Nothing here imports torch at import time.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from .errors import StudioError
from .settings import TuneSettings, setting

OBJECTIVES = ("sft", "kto", "dpo", "ipo")
PAIRED = ("dpo", "ipo")  # the objectives that learn from (kept, dropped) pairs of one prompt


OBJECTIVE_HELP = {"sft": "sft: learn the kept set", "kto": "kto: also learn from the dropped (unpaired, anchored to "
                                                             "the starting model)",
                  "dpo": "dpo: kept against dropped of the same prompt",
                  "ipo": "ipo: as dpo, each pair's margin drawn to 1 / (2 beta) and no further"}


def objective_setting(default: str, choices: Sequence[str] = OBJECTIVES) -> Any:
    """The ``objective`` field with a medium's measured default (docs/objectives.md) and the objectives its
    tune has (all three everywhere now; a model can have fewer: ``Medium.tune_objectives``)."""
    return setting(default, "; ".join(OBJECTIVE_HELP[c] for c in choices), choices=tuple(choices), label="Objective")


def beta_setting(default: float, maximum: float = 100, objectives: Sequence[str] = ("kto", *PAIRED)) -> Any:
    """The ``beta`` field with a medium's measured default (docs/objectives.md); its scale follows what the
    reward measures (images: per-element denoising errors, so beta in the hundreds)."""
    return setting(default, f"{' / '.join(objectives)}: how far the tune may move from the starting model (higher: "
                            "stays closer)", above=0, max=maximum)


def tuned_beta_scale_setting(default: float) -> Any:
    """The ``tuned_beta_scale`` field: beta's multiple for a tune that starts from a tuned version (a later round),
    with a medium's measured default (1: the same beta every round)."""
    return setting(default, "kto / dpo: beta times this for a tune that starts from a tuned version (a later "
                            "round), keeping it closer to where the last round left the model; 1: the same beta",
                   above=0, max=100, label="Later rounds' anchor (x beta)")


def tune_beta(settings: dict[str, Any], parent_adapter: str | None) -> float:
    """The beta a tune uses: the setting, times ``tuned_beta_scale`` when it starts from a tuned version.  A job
    stored before the scale existed reads as 1, so it resumes as it was made."""
    scale = float(settings.get("tuned_beta_scale", 1.0)) if parent_adapter else 1.0
    return float(settings.get("beta", 0.0)) * scale


def tune_kept_floor(settings: dict[str, Any], parent_adapter: str | None) -> float:
    """The kept floor a tune uses: the setting, times ``tuned_floor_scale`` when it starts from a tuned version."""
    scale = float(settings.get("tuned_floor_scale", 1.0)) if parent_adapter else 1.0
    return float(settings.get("kept_floor", 0.0)) * scale


def kept_floor_setting(default: float, what: str) -> Any:
    """The ``kept_floor`` field: kto's and dpo's pull back on a kept candidate the tune made rarer than the
    starting model (kto_loss, dpo_loss), with a medium's measured default; ``what`` names its candidates."""
    return setting(default, f"kto / dpo: pull back a kept {what} the tune makes rarer than the starting model did, "
                            "at this multiple of the objective's steepest pull (0 = off)", min=0, max=100,
                   label="Keep the kept from falling")


def sft_weight_setting(default: float, what: str) -> Any:
    """The ``sft_weight`` field: sft's own loss on the kept candidates beside kto's or dpo's, with a medium's
    measured default; ``what`` names its candidates (plural)."""
    return setting(default, f"kto / dpo: also learn the kept {what} directly, sft's loss beside theirs at this weight "
                            "(0 = off)", min=0, max=100, label=f"Kept {what}' own loss")


def hold_setting(default: float, what: str) -> Any:
    """The ``hold`` field: kto's and dpo's pull back on the batch's undecided candidates (neither kept nor learned
    away from) that the tune makes rarer than the starting model did, with a medium's measured default."""
    return setting(default, f"kto / dpo: hold the batch's undecided {what} (neither kept nor learned away from) as "
                            "likely as the starting model made them, at this multiple of the objective's steepest "
                            "pull (0 = off): against a tune that moves its mass onto what neither side held",
                   min=0, max=100, label="Hold the undecided")


def drop_share_setting(default: float) -> Any:
    """The ``drop_share`` field: which of the rule's drops a preference tune learns away from."""
    return setting(default, "kto / dpo: the rule's drops that count, the lowest-scoring share of each batch "
                            "(1: every drop; 0.25: the bottom quarter); drops by hand always count",
                   min=0, max=1, label="Rule drops that count")


def lowest_share(batch: Sequence[Any], share: float) -> set[str]:
    """The ids of a batch's lowest-scoring ``share`` of candidates by the rule's score (``scores['score']``;
    candidates the rule never scored are in no share)."""
    scored = sorted((c for c in batch if "score" in c.scores), key=lambda c: c.scores["score"])
    return {c.id for c in scored[:round(share * len(batch))]}


@dataclasses.dataclass
class PreferenceTune(TuneSettings):
    """The tune settings of a medium whose tune can learn from drops (text, symbolic music, images)."""

    objective: str = objective_setting("sft")
    beta: float = beta_setting(0.1)
    drop_share: float = drop_share_setting(1.0)
    tuned_beta_scale: float = tuned_beta_scale_setting(1.0)

    def check(self, owner: str) -> None:
        if self.objective != "sft" and self.prior_weight > 0:
            raise StudioError(f"The {self.objective} objective learns from the dropped candidates itself; "
                              "set prior_weight to 0, or objective to sft.")
        for floor in ("kept_floor", "end_floor"):  # a medium with the floor
            if getattr(self, floor, 0) > 0 and self.objective not in ("kto", "dpo"):
                raise StudioError(f"{floor} acts on kto's and dpo's rewards; set it to 0, or objective to kto or dpo.")
        if getattr(self, "hold", 0) > 0 and self.objective == "sft":  # a medium with the hold
            raise StudioError("hold acts beside kto's and dpo's rewards; set it to 0, or objective to kto or dpo.")


def kto_loss(policy: Any, reference: Any, kept: Any, beta: float, kept_weight: float = 1.0,
             dropped_weight: float = 1.0, kept_floor: float = 0.0) -> Any:
    """The mean KTO loss of a batch: ``policy`` and ``reference`` are per-candidate summed log-probs,
    ``kept`` a bool tensor (True: kept, False: dropped).  ``kept_floor`` > 0 adds, for a kept candidate
    the tune made rarer than the starting model (reward below 0), a pull back that grows with the fall,
    at ``kept_floor`` times kto's steepest (beta / 4 per nat): kto's sigmoid lets go of a kept candidate
    pushed far below, so drops that resemble it could take it down."""
    import torch

    reward = policy - reference.to(policy.device, policy.dtype)
    z0 = reward.detach().mean().clamp(min=0)
    kept = kept.to(policy.device)
    value = torch.where(kept, kept_weight * (1 - torch.sigmoid(beta * (reward - z0))),
                        dropped_weight * (1 - torch.sigmoid(beta * (z0 - reward))))
    if kept_floor > 0:
        value = value + torch.where(kept, kept_floor * beta / 4 * torch.relu(-reward), torch.zeros_like(reward))
    return value.mean()


def dpo_loss(policy_kept: Any, reference_kept: Any, policy_dropped: Any, reference_dropped: Any,
             beta: float, kept_floor: float = 0.0) -> Any:
    """The mean DPO loss over pairs (kept[i], dropped[i]) of the same prompt.  ``kept_floor`` > 0 adds, for a
    pair's kept candidate the tune made rarer than the starting model (reward below 0), a pull back that grows
    with the fall, at ``kept_floor`` times dpo's steepest (beta / 2 per nat; DPO-Positive, Pal et al. 2024, in
    kto_loss's additive form): a margin can be won by lowering the kept too, as long as the dropped falls further."""
    import torch

    kept_reward = policy_kept - reference_kept.to(policy_kept.device)
    margin = kept_reward - (policy_dropped - reference_dropped.to(policy_dropped.device))
    value = -torch.nn.functional.logsigmoid(beta * margin)
    if kept_floor > 0:
        value = value + kept_floor * beta / 2 * torch.relu(-kept_reward)
    return value.mean()


def ipo_loss(policy_kept: Any, reference_kept: Any, policy_dropped: Any, reference_dropped: Any,
             beta: float) -> Any:
    """The mean IPO loss over pairs (kept[i], dropped[i]) of the same prompt: the squared distance of each pair's
    margin (kept reward - dropped reward) from 1 / (2 beta), so a pair past its target is pulled back."""
    margin = (policy_kept - reference_kept.to(policy_kept.device)) - (
        policy_dropped - reference_dropped.to(policy_dropped.device))
    return ((margin - 1 / (2 * beta)) ** 2).mean()


class RewardLog:
    """A preference step's rewards for its log, the mean reward (log pi - log pi_ref; the image tune's reference
    error - tune error) of the batch's kept rows and of its dropped rows.  ``hold`` keeps the batch's rewards
    detached on the device, so the loss never waits for them; ``means`` reads them in one transfer when the step is
    logged, after the step's own loss has been read."""

    def __init__(self):
        self.held: Any = None

    def hold(self, reward: Any, kept: Any) -> None:
        self.held = (reward.detach().float(), kept)

    def means(self) -> dict[str, float]:
        """The last held batch's mean kept and dropped rewards, each absent when the batch had none; {} before any."""
        if self.held is None:
            return {}
        import torch

        reward, kept = self.held
        values, flags = torch.stack([reward, kept.to(reward.device, reward.dtype)]).cpu().tolist()
        sides = {"kept_reward": [v for v, k in zip(values, flags) if k],
                 "dropped_reward": [v for v, k in zip(values, flags) if not k]}
        return {name: round(sum(side) / len(side), 6) for name, side in sides.items() if side}


def same_prompt_pairs(kept_prompts: Sequence[str], dropped_prompts: Sequence[str]) -> list[tuple[int, int]]:
    """Every (kept index, dropped index) whose prompts are equal: the pairs DPO learns from."""
    return [(i, j) for i, k in enumerate(kept_prompts) for j, d in enumerate(dropped_prompts) if k == d]


def sequence_log_probs(logits: Any, labels: Any) -> Any:
    """Per row, the summed log-prob of the row's counted next tokens: logits (rows, length, vocab) of a
    causal LM and labels (rows, length) aligned with its inputs, -100 where a token does not count."""
    import torch

    targets = labels[:, 1:].to(logits.device)
    keep = targets != -100
    log_p = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = log_p.gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)
    return (picked * keep).sum(dim=1)


class PreferenceBatches:
    """Draws a preference tune's rows: rows ``0..kept-1`` are kept candidates, ``kept..total-1`` dropped.

    ``reference`` holds the starting model's summed log-prob of every row (computed by the task before
    any step).  ``loss(step, generator, log_probs)`` draws a batch and returns the objective's loss,
    where ``log_probs(rows)`` is the task's differentiable summed log-prob of each row under the tune.
    With ``sft_weight`` above 0 the batch's kept rows' mean log-prob per token (``tokens``: per row, what
    divides its log-prob into that) adds sft's loss at that weight.  Rows ``total..total+undecided-1`` are the
    batch's undecided candidates: with ``hold`` above 0 each step also draws some of them and pulls back any the
    tune made rarer than the starting model, at ``hold`` times the objective's steepest pull (beta / 2 per nat,
    as the kept floor).  A won pair stops pulling, and what the tune then moves goes where neither side was
    (likelihood displacement, Razin et al. 2024): the undecided candidates are the starting model's own texts
    of the prompt that no side claims, so holding them keeps its mass on its kind of text without reciting a keep.
    """

    def __init__(self, objective: str, kept: int, total: int, batch_size: int, beta: float,
                 prompts: Sequence[str] = (), kept_floor: float = 0.0, sft_weight: float = 0.0,
                 tokens: Any = None, undecided: int = 0, hold: float = 0.0):
        if objective not in ("kto", *PAIRED):
            raise StudioError(f"The objective must be kto, dpo or ipo here, not {objective!r}.")
        if total <= kept:
            raise StudioError(f"The {objective} objective needs dropped candidates beside the kept ones.")
        self.objective, self.kept, self.total = objective, kept, total
        self.batch_size, self.beta, self.kept_floor = batch_size, beta, kept_floor
        if sft_weight > 0 and tokens is None:
            raise StudioError("The kept candidates' own loss needs each row's token count.")
        self.sft_weight, self.tokens = float(sft_weight), tokens
        self.undecided, self.hold = (int(undecided), float(hold)) if hold > 0 else (0, 0.0)
        self.pairs: list[tuple[int, int]] = []
        if objective in PAIRED:
            self.pairs = [(i, kept + j) for i, j in same_prompt_pairs(prompts[:kept], prompts[kept:])]
            if not self.pairs:
                raise StudioError(f"The {objective} objective needs a prompt with both a kept and a dropped candidate; "
                                  "use kto for unpaired keeps and drops.")
        self.reference: Any = None  # per row, set by the task once
        self.reward_log = RewardLog()  # the last batch's rewards, for the step's log

    def keep_least_alike(self, states: Any, share: float) -> None:
        """Keeps the ``share`` of the pairs whose kept and dropped candidates are least alike to the starting
        model: lowest length-normalised CHES (Razin et al. 2024, "Unintentional Unalignment"), the mean hidden
        state over the kept one's tokens dotted with the dropped one's, minus the kept one's squared norm.  A pair
        scoring high is one whose margin dpo wins by lowering both sides together, which moves probability onto
        what resembles neither (likelihood displacement).  ``states``: per row, its mean hidden state."""
        if share >= 1 or len(self.pairs) < 2:
            return
        kept = states[[i for i, _ in self.pairs]].double()
        dropped = states[[j for _, j in self.pairs]].double()
        ches = ((kept * dropped).sum(-1) - (kept * kept).sum(-1)).tolist()
        order = sorted(range(len(self.pairs)), key=lambda p: ches[p])[:max(1, round(share * len(self.pairs)))]
        self.pairs = [self.pairs[p] for p in sorted(order)]

    def loss(self, step: int, generator: Any, log_probs) -> Any:
        import torch

        from .training import batch_rows

        if self.objective in PAIRED:
            size = max(1, self.batch_size // 2)
            pick = torch.randint(0, len(self.pairs), (size,), generator=generator).tolist()
            rows = torch.tensor([self.pairs[p][0] for p in pick] + [self.pairs[p][1] for p in pick])
            values = log_probs(rows)
            ref = self.reference[rows]
            self.reward_log.hold(values - ref.to(values.device), rows < self.kept)
            if self.objective == "ipo":
                loss = ipo_loss(values[:size], ref[:size], values[size:], ref[size:], self.beta)
            else:
                loss = dpo_loss(values[:size], ref[:size], values[size:], ref[size:], self.beta, self.kept_floor)
            return loss + self._kept_loss(values, rows) + self._undecided_loss(size, generator, log_probs)
        # half of every batch from each side: the counts balanced, so lambda_D = lambda_U = 1
        size = max(2, self.batch_size)
        rows = batch_rows(self.kept, self.total, size, 0.5, generator)
        values = log_probs(rows)
        self.reward_log.hold(values - self.reference[rows].to(values.device), rows < self.kept)
        loss = kto_loss(values, self.reference[rows], rows < self.kept, self.beta, kept_floor=self.kept_floor)
        return loss + self._kept_loss(values, rows) + self._undecided_loss(size // 2, generator, log_probs)

    def _undecided_loss(self, size: int, generator: Any, log_probs) -> Any:
        """The pull back on ``size`` undecided rows drawn at random that the tune made rarer than the starting
        model (0 when off or when there are none)."""
        import torch

        if not self.undecided:
            return 0.0
        rows = self.total + torch.randint(0, self.undecided, (max(1, size),), generator=generator)
        values = log_probs(rows)
        fall = self.reference[rows].to(values.device, values.dtype) - values
        return self.hold * self.beta / 2 * torch.relu(fall).mean()

    def _kept_loss(self, values: Any, rows: Any) -> Any:
        """sft's loss on the batch's kept rows at ``sft_weight``: their mean negative log-prob per token (0 when
        off or when the batch drew no kept row)."""
        kept = rows < self.kept
        if self.sft_weight <= 0 or not bool(kept.any()):
            return values.new_zeros(())
        per_token = values[kept.to(values.device)] / self.tokens[rows[kept]].to(values.device, values.dtype)
        return -self.sft_weight * per_token.mean()
