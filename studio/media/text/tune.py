"""LoRA SFT on accepted (prompt, completion) pairs: the TuneTask the shared trainer drives.

A pair may carry a third item, whether the completion ended (False: generation cut it off at its
length limit, so no end token is learned after it; ``prompting.cut_at_limit``).

Tokenized once when built; the loss counts completion tokens only, and runs the output head
only on them, chunk by chunk (``loss.py``: no full float32 logits).  Examples are packed
end to end into fixed-length rows (``packing="packed"``, no padding), or one per padded
row (``"padded"``, kept for the benchmark).  With a preference objective (``kto``/``dpo``,
studio/preference.py) the kept and then the dropped texts are one per padded row, each scored whole.  The adapter lives beside any loaded versions
in the handle's one ``PeftModel``; ``save`` writes a standard peft folder
(adapter_config.json + adapter_model.safetensors) that stock ``PeftModel.from_pretrained`` loads.
"""
from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

from ...errors import StudioError
from ...preference import PreferenceBatches, same_prompt_pairs, sequence_log_probs, tune_beta, tune_kept_floor
from ...training import batch_rows, trial_groups
from .loss import (IGNORE, anchored_cross_entropy, body_and_head, chunked_cross_entropy, compile_layers, counted,
                   summed_log_probs, varlen_attention_available)
from . import guard
from .model import TextHandle
from .packing import padded_rows, packed_rows
from .prompting import cut_at_limit, example_ids, goldfish_mask
from .settings import TextTune

_counter = itertools.count(1)
TRIAL_TEXTS = 16  # a look's texts (training.py): 2 copies in 16 is over a 10% limit, 1 is not
Pair = tuple[str, str] | tuple[str, str, bool]  # (prompt, completion[, ended])


def check_memorization_settings(settings: dict[str, Any]) -> tuple[float, int]:
    """(anchor, goldfish) from checked settings (their ranges live in TextTune)."""
    return float(settings["anchor"]), int(settings["goldfish"])


def lora_config(settings: dict[str, Any], parent_adapter: str | None):
    from peft import LoraConfig

    if parent_adapter:  # the new version grows from its parent: same shape, its weights to start
        if not (Path(parent_adapter) / "adapter_config.json").exists():
            raise StudioError(f"No adapter found at '{parent_adapter}' to tune from.")
        config = LoraConfig.from_pretrained(parent_adapter)
        config.lora_dropout = float(settings["dropout"])
        return config
    rank = int(settings["rank"])
    alpha = settings["alpha"] if settings["alpha"] is not None else TextTune.alpha_per_rank * rank
    targets = list(settings["targets"])
    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=float(settings["dropout"]),
                      target_modules="all-linear" if targets == ["all-linear"] else targets,
                      task_type="CAUSAL_LM")


def counted_tokens(labels: Any) -> Any:
    """Per row of ``labels`` (rows, length), how many next tokens count (at least 1)."""
    return (labels[:, 1:] != IGNORE).sum(dim=1).clamp(min=1)


def end_labels(labels: Any, rows: int, end: int) -> Any:
    """``labels`` with only the last counted token of each of the first ``rows`` rows counted, where it is the end
    token ``end`` (the text ended: ``example_ids``); every other position ignored."""
    ends = labels.new_full(labels.shape, IGNORE)
    for row in range(min(rows, labels.shape[0])):
        counted_at = (labels[row] != IGNORE).nonzero()
        if len(counted_at) and int(labels[row, int(counted_at[-1])]) == end:
            ends[row, int(counted_at[-1])] = end
    return ends


def ended(pair: Pair) -> bool:
    """Whether a (prompt, text[, ended]) pair's text ended by itself (a pair without the flag did)."""
    return bool(pair[2]) if len(pair) > 2 else True


def cut_share(cut: Sequence[bool]) -> float:
    """The share of texts cut off at their length limit (``cut``: per text, whether it was); 0 with none."""
    return sum(cut) / len(cut) if cut else 0.0


class TextTuneTask:
    def __init__(self, handle: TextHandle, pairs: Sequence[Pair], settings: dict[str, Any],
                 parent_adapter: str | None = None, prior_pairs: Sequence[Pair] = (),
                 dropped_pairs: Sequence[Pair] = (), trials: Sequence[tuple[str, dict[str, Any]]] = (),
                 undecided_pairs: Sequence[Pair] = ()):
        import torch
        from peft import get_peft_model
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        if not pairs:
            raise StudioError("There is nothing to tune on: accept at least one candidate first.")
        self.handle = handle
        self.batch_size = int(settings["batch_size"])
        self.seq_len = min(int(settings["seq_len"]), handle.context)
        self.name = f"tune{os.getpid()}_{next(_counter)}"
        config = lora_config(settings, parent_adapter)
        with torch.random.fork_rng(devices=[]):  # the LoRA init is part of the recipe: same seed, same start
            torch.manual_seed(int(settings["seed"]))
            if handle.peft:
                handle.model.add_adapter(self.name, config)
            else:
                handle.model = get_peft_model(handle.model, config, adapter_name=self.name)
        handle.model.set_adapter(self.name)
        handle.model.eval()  # no dropout but the adapter's own, in the loss only: training.py seeds it per step
        self.dropping = False  # the adapter's dropout acts: in a step's loss alone
        self.dropouts = [module for name, module in handle.model.named_modules()
                         if name.endswith(f"lora_dropout.{self.name}") and isinstance(module, torch.nn.Dropout)]
        self.split = body_and_head(handle.model)  # None: the model keeps the plain full-logits loss
        # with no drops given a preference objective has nothing to learn away from: the kept set alone, as the
        # engine's tune says in its note
        self.objective = settings["objective"] if dropped_pairs else "sft"
        self.per_token = settings["rewards"] == "per_token"  # kto / dpo: a text's mean log-prob ratio, not its sum
        # a preference objective scores each candidate whole: one per row, never packed
        self.packing = settings["packing"] if self.objective == "sft" else "padded"
        if self.packing == "packed" and varlen_attention_available(handle.device, handle.model.dtype):
            handle.model.get_base_model().set_attn_implementation("flash_attention_2")  # varlen over the packing
        if settings["compile"] == "layers" and self.split and str(handle.device).startswith("cuda"):
            compile_layers(self.split[0])  # opt-in until a GPU run shows it pays (benchmarks/bench_text.py)
        marker = f".{self.name}."
        for name, param in handle.model.named_parameters():
            param.requires_grad_(marker in name)
        if parent_adapter:
            state = load_file(str(Path(parent_adapter) / "adapter_model.safetensors"))
            set_peft_model_state_dict(handle.model, state, adapter_name=self.name)

        self.anchor_weight, self.goldfish = check_memorization_settings(settings)
        inputs, labels, extra = self._rows(pairs, settings)
        # prior preservation: un-kept base texts in their own rows, this share of every batch
        self.prior_weight = float(settings["prior_weight"]) if prior_pairs else 0.0
        self.kept_rows = len(inputs)
        self.preference = None
        if self.objective != "sft":  # the dropped candidates after the kept ones, one per row (preference.py)
            # the undecided after them, held as likely as the starting model made them (hold, preference.py)
            undecided_pairs = list(undecided_pairs) if float(settings.get("hold", 0.0)) > 0 else []
            inputs, labels, extra = self._rows([*pairs, *dropped_pairs, *undecided_pairs], settings)
            self.preference = PreferenceBatches(self.objective, len(pairs), len(pairs) + len(dropped_pairs),
                                                self.batch_size,
                                                tune_beta(settings, parent_adapter),
                                                [pair[0] for pair in [*pairs, *dropped_pairs]],
                                                kept_floor=tune_kept_floor(settings, parent_adapter),
                                                sft_weight=float(settings.get("sft_weight", 0.0)),
                                                tokens=self._token_counts(labels),
                                                undecided=len(undecided_pairs), hold=float(settings.get("hold", 0.0)))
            self.reward_log = self.preference.reward_log  # each step's rewards, for its log
        elif self.prior_weight > 0:
            more = self._rows(prior_pairs, settings)
            inputs, labels, extra = inputs + more[0], labels + more[1], extra + more[2]
        self.inputs = torch.tensor(inputs)
        self.labels = torch.tensor(labels)
        self.extra = torch.tensor(extra)
        # the end floor: each kept or dropped text's end token alone, where the text ended (preference rows only)
        self.end_floor = float(settings.get("end_floor") or 0.0) if self.preference is not None else 0.0
        self.end_labels = end_labels(self.labels, len(pairs) + len(dropped_pairs),
                                     handle.tokenizer.eos_token_id) if self.end_floor > 0 else None
        self.has_end = (self.end_labels != IGNORE).any(dim=1) if self.end_labels is not None else None
        self.ends_seen: list[tuple[Any, Any]] = []  # (rows, their end tokens' log-probs) since the last step
        self.tokens_seen = 0  # real (non-padding) tokens through the model: the benchmark's throughput
        # the anchor: the starting model's hidden states at every counted position, once (see loss.py)
        self.anchor = self._anchor_states() if self.anchor_weight > 0 and self.split is not None else None
        if self.preference is not None:  # the starting model's log-probs, before any step (a resume repeats them)
            self.preference.reference = self._reference_log_probs()
            self.reference_ends = self._seen_ends()[1] if self.end_labels is not None else None
            pair_share = float(settings.get("pair_share", 1.0))
            if pair_share < 1 and self.preference.pairs:
                self.preference.keep_least_alike(self._mean_states(), pair_share)
        # the trainer's looks (training.py): trial texts on fixed seeds, against the kept ones
        self.stop_copying = float(settings["stop_copying"])
        self.trials = list(trials)
        self.kept_texts = [pair[1] for pair in pairs]
        self.copy_guard = int(settings["copy_guard"])
        # the texts the saved version's guard will hold (its own and its parent's), read once: the looks write with it
        self.guarded = (self.copy_guard, guard.learned(self.kept_texts, parent_adapter)) if self.copy_guard else None
        self.stop_narrowing = float(settings.get("stop_narrowing") or 0.0)
        self.kept_variety = self._variety(self.kept_texts) if self.stop_narrowing > 0 and trials else 0.0
        # how far the kept ones' batch is from the kept texts: a stray look's yardstick (0: no look)
        self.stop_straying = float(settings.get("stop_straying") or 0.0)
        self.kept_features, self.batch_distance = None, 0.0
        if self.stop_straying > 0 and trials:
            self.kept_features, self.batch_distance = self._batch_distance([pair[1] for pair in dropped_pairs])
        # the share of the kept texts, or of their batch, that generation cut off: a run-on look's yardstick
        self.stop_running_on = float(settings.get("stop_running_on") or 0.0)
        cut = [not ended(pair) for pair in [*pairs, *dropped_pairs]]
        self.usual_cut = max(cut_share(cut[:len(pairs)]), cut_share(cut))
        # a word the looks find spreading: the trial texts that hold it become dropped rows (dpo / ipo's pairs)
        self.settings = settings
        paired = self.preference is not None and bool(self.preference.pairs)
        self.unspread = float(settings.get("unspread") or 0.0) if paired else 0.0
        self.kept_prompts = [pair[0] for pair in pairs]
        self.batch_texts = [pair[1] for pair in [*pairs, *dropped_pairs]]  # the kept ones' batch: the "before"
        self.learned_away: list[list[Pair]] = []  # each look's added rows, in order (a resume adds them again)
        self.spread_words: list[str] = []
        self.start_state = ({k: v.detach().clone() for k, v in self.adapter_state().items()}
                            if self.unspread > 0 else None)
        self.note: str | None = None
        stops = (self.stop_copying < 1 or self.kept_variety > 0 or self.batch_distance > 0
                 or self.stop_running_on > 0)  # a look that may end the tune
        self.look = self.look_at_trials if trials and (stops or self.unspread > 0) else None
        # watched for a spreading word alone, the last look would add rows no step learns from
        self.look_at_end = bool(stops) or not self.unspread
        if self.look is not None:
            handle.adapters.setdefault(self.name, self.name)  # sampling knows the unsaved adapter by its name

    def _rows(self, pairs: Sequence[Pair], settings: dict[str, Any]) -> tuple[list, list, list]:
        """(input ids, labels, positions or attention masks) rows of the pairs, packed or padded."""
        encoded = [example_ids(self.handle.tokenizer, pair[0], pair[1], ended=ended(pair))
                   for pair in pairs]
        encoded = [(ids, goldfish_mask(ids, mask, self.goldfish)) for ids, mask in encoded]
        encoded = [(ids[:self.seq_len], mask[:self.seq_len]) for ids, mask in encoded]
        if self.packing == "packed":
            return packed_rows(encoded, self.seq_len, min_rows=self.batch_size, seed=int(settings["seed"]))
        return padded_rows(encoded, self.handle.tokenizer.pad_token_id)

    def _token_counts(self, labels: list) -> Any:
        """Per row, what turns its ``sequence_log_probs`` into a mean per counted token: the count, or 1 where
        the rewards are per token already."""
        import torch

        counts = counted_tokens(torch.tensor(labels)).float()
        return torch.ones_like(counts) if self.per_token else counts

    def _anchor_states(self) -> list[Any]:
        """Per row, the starting model's (base or parent) last hidden states at its counted positions."""
        import torch

        states = []
        with torch.no_grad():
            for row in range(len(self.inputs)):
                hidden = self.hidden(torch.tensor([row]))
                states.append(counted(hidden, self.labels[row:row + 1])[0].cpu())
        self.tokens_seen = 0
        return states

    def _mean_states(self) -> Any:
        """Per row, the starting model's last hidden state averaged over the positions that predict its counted
        tokens (what ``keep_least_alike`` compares)."""
        import torch

        def last_hidden(rows):  # a model without a plain head (a capped one) gives its states on request
            if self.split is not None:
                return self.hidden(rows)
            self._use_adapter()
            return self.handle.model(input_ids=self.inputs[rows].to(self.handle.device),
                                     attention_mask=self.extra[rows].to(self.handle.device), use_cache=False,
                                     output_hidden_states=True).hidden_states[-1]

        with torch.no_grad():
            states = torch.stack([counted(last_hidden(torch.tensor([row])), self.labels[row:row + 1])[0]
                                  .float().mean(dim=0).cpu() for row in range(len(self.inputs))])
        self.tokens_seen = 0
        return states

    def _reference_log_probs(self) -> Any:
        import torch

        with torch.no_grad():
            values = torch.cat([self.sequence_log_probs(torch.arange(start, min(start + self.batch_size,
                                                                                len(self.inputs))))
                                for start in range(0, len(self.inputs), self.batch_size)])
        self.tokens_seen = 0
        return values.detach().cpu()

    def sequence_log_probs(self, rows: Any) -> Any:
        """Per row, the tune's log-prob of the candidate's counted tokens (a preference objective's log pi):
        summed, or with ``rewards`` per_token their mean."""
        labels = self.labels[rows]
        if self.split is not None:
            hidden = self.hidden(rows)
            values = summed_log_probs(hidden, self.split[1], labels)
            if self.end_labels is not None:  # from the same pass: one head row per text
                self.ends_seen.append((rows, summed_log_probs(hidden, self.split[1], self.end_labels[rows])))
        else:
            logits = self.logits(rows)
            values = sequence_log_probs(logits, labels)
            if self.end_labels is not None:
                self.ends_seen.append((rows, sequence_log_probs(logits, self.end_labels[rows])))
        if self.per_token:
            values = values / counted_tokens(labels).to(values.device, values.dtype)
        return values

    def _seen_ends(self) -> tuple[Any, Any]:
        """(rows, end log-probs) of every ``sequence_log_probs`` call since the last, in order; the record emptied."""
        import torch

        rows, values = zip(*self.ends_seen)
        self.ends_seen = []
        return torch.cat(rows), torch.cat(values)

    def _end_floor_loss(self) -> Any:
        """The end floor on this step's rows: the mean fall of their ended texts' end tokens below the starting
        model's, at ``end_floor`` times the objective's steepest pull (beta / 2 per nat, as the kept floor)."""
        import torch

        rows, values = self._seen_ends()
        counted = self.has_end[rows].to(values.device)
        if not bool(counted.any()):
            return values.new_zeros(())
        fall = torch.relu(self.reference_ends[rows].to(values.device, values.dtype) - values)
        return self.end_floor * self.preference.beta / 2 * fall[counted].mean()

    def parameters(self) -> list[Any]:
        return [p for p in self.handle.model.parameters() if p.requires_grad]

    def logits(self, rows: Any) -> Any:
        """The model's logits on the given rows; packed examples never attend to one another."""
        device = self.handle.device
        inputs, extra = self.inputs[rows].to(device), self.extra[rows].to(device)
        self._use_adapter()
        if self.packing == "packed":  # no cache, so transformers masks by the restarting position ids
            self.tokens_seen += inputs.numel()
            return self.handle.model(input_ids=inputs, position_ids=extra, use_cache=False).logits
        self.tokens_seen += int(extra.sum())
        return self.handle.model(input_ids=inputs, attention_mask=extra, use_cache=False).logits

    def hidden(self, rows: Any) -> Any:
        """The body's last hidden states on the given rows (``logits`` without the head)."""
        device = self.handle.device
        inputs, extra = self.inputs[rows].to(device), self.extra[rows].to(device)
        self._use_adapter()
        body = self.split[0]
        if self.packing == "packed":
            self.tokens_seen += inputs.numel()
            return body(input_ids=inputs, position_ids=extra, use_cache=False).last_hidden_state
        self.tokens_seen += int(extra.sum())
        return body(input_ids=inputs, attention_mask=extra, use_cache=False).last_hidden_state

    def _use_adapter(self) -> None:
        """This tune's adapter switched on, its dropout on only inside a step (peft 0.22 on sets an adapter's
        modules to its layer's mode, eval here, on every ``set_adapter``)."""
        self.handle.model.set_adapter(self.name)
        self._set_dropouts()

    def _set_dropouts(self) -> None:
        for module in self.dropouts:
            module.train(self.dropping)

    def loss(self, step: int, generator: Any) -> Any:
        self.dropping = True  # on for the steps alone: the reference, the anchor and generating see none
        try:
            return self._loss(step, generator)
        finally:
            self.dropping = False
            self._set_dropouts()

    def _loss(self, step: int, generator: Any) -> Any:
        import torch

        if self.preference is not None:
            loss = self.preference.loss(step, generator, self.sequence_log_probs)
            return loss + self._end_floor_loss() if self.end_labels is not None else loss
        rows = batch_rows(self.kept_rows, len(self.inputs), self.batch_size, self.prior_weight, generator)
        if self.anchor is not None:  # kept tokens, with the starting model's alternatives kept alive
            anchor = torch.cat([self.anchor[int(r)] for r in rows])
            return anchored_cross_entropy(self.hidden(rows), anchor, self.split[1], self.labels[rows],
                                          self.anchor_weight)
        if self.split is not None:  # the head chunk by chunk, on counted positions only (text/loss.py)
            return chunked_cross_entropy(self.hidden(rows), self.split[1], self.labels[rows])
        logits = self.logits(rows)
        labels = self.labels[rows].to(logits.device)
        return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                                 ignore_index=-100)

    def look_at_trials(self) -> str | None:
        """TRIAL_TEXTS texts from the tune as it stands, the kept prompts in turn on fixed seeds (never a
        candidate's: TRIAL_SEED up); one sentence when more than ``stop_copying`` of them bring a kept text back
        (the medium's copy test), or when their variety (the studio's: mean pairwise distance of their
        embeddings) is below ``stop_narrowing`` times the kept set's; None otherwise."""
        from ...variety import text_copies
        from .generate import sample

        # with the guard the saved version will carry, so a look counts the copies that version would write
        texts, cut, prompts = [], [], []
        for prompt, params, seeds in trial_groups(self.trials, TRIAL_TEXTS):  # sampling switches this adapter on
            texts += sample(self.handle, prompt, seeds, params, self.name, guarded=self.guarded)[0]
            cut += [cut_at_limit(self.handle.tokenizer, text, params) for text in texts[len(cut):]]
            prompts += [prompt] * len(seeds)
        copied = sum(text_copies(texts, self.kept_texts))
        if self.stop_copying < 1 and copied > self.stop_copying * len(texts):
            return f"{copied} of its {len(texts)} trial texts brought a kept text back"
        if self.kept_variety > 0:
            variety = self._variety(texts)
            if variety < self.stop_narrowing * self.kept_variety:
                return f"its {len(texts)} trial texts were {variety / self.kept_variety:.2f}x as varied as the kept set"
        if self.batch_distance > 0:
            from ...variety import nearest_distances
            from .embedding import embed_texts

            far = float(nearest_distances(embed_texts(texts), self.kept_features).mean()) / self.batch_distance
            if far > self.stop_straying:
                return (f"its {len(texts)} trial texts were {far:.2f}x as far from the kept texts as the batch they "
                        "were kept from")
        if self.stop_running_on > 0 and cut_share(cut) > self.usual_cut + self.stop_running_on:
            return (f"{sum(cut)} of its {len(texts)} trial texts ran on to the length limit, where "
                    f"{self.usual_cut:.0%} of the kept texts or their batch did")
        if self.unspread > 0:
            self._learn_away_spread([(p, t, not c) for p, t, c in zip(prompts, texts, cut)])
        return None

    def _learn_away_spread(self, trial: Sequence[Pair]) -> None:
        """When one word is in ``unspread`` more of the trial texts than of the kept texts and of their batch
        (``metrics.spread_beyond``, compare's test), the trial texts that hold it become dropped rows."""
        from .metrics import spread_beyond
        from .verse import words

        found = spread_beyond([t[1] for t in trial], self.kept_texts, self.batch_texts, [t[0] for t in trial])
        if found is None or found["after"] <= max(found["kept"], found["before"]) + self.unspread:
            return
        self.add_dropped([t for t in trial if found["word"] in words(t[1])])
        self.spread_words.append(found["word"])
        added = sum(len(rows) for rows in self.learned_away)
        said = ", ".join(f"'{w}'" for w in dict.fromkeys(self.spread_words))
        self.note = (f"It learned away from {said} as it spread ({added} of its trial texts held it, "
                     "learned as dropped ones).")

    def add_dropped(self, new: Sequence[Pair]) -> None:
        """``new`` (prompt, text[, ended]) as dropped rows after every other, each paired with the kept rows of its
        prompt, their reference log-probs the starting model's (its adapter swapped in for the while)."""
        import torch
        from torch.nn.functional import pad

        inputs, labels, masks = (torch.tensor(rows) for rows in self._rows(new, self.settings))
        width = max(self.inputs.shape[1], inputs.shape[1])

        def wide(rows: Any, fill: int) -> Any:
            return pad(rows, (0, width - rows.shape[1]), value=fill)

        first, pad_id = len(self.inputs), self.handle.tokenizer.pad_token_id
        self.inputs = torch.cat([wide(self.inputs, pad_id), wide(inputs, pad_id)])
        self.labels = torch.cat([wide(self.labels, IGNORE), wide(labels, IGNORE)])
        self.extra = torch.cat([wide(self.extra, 0), wide(masks, 0)])
        if self.end_labels is not None:  # the end floor counts the kept and the first dropped texts alone
            ends = wide(self.end_labels, IGNORE)
            self.end_labels = torch.cat([ends, ends.new_full((len(new), width), IGNORE)])
            self.has_end = torch.cat([self.has_end, torch.zeros(len(new), dtype=torch.bool)])
        self.preference.reference = torch.cat([self.preference.reference,
                                               self._starting_log_probs(torch.arange(first, len(self.inputs)))])
        self.preference.pairs += [(i, first + j) for i, j in same_prompt_pairs(self.kept_prompts,
                                                                                [row[0] for row in new])]
        self.learned_away.append(list(new))

    def _starting_log_probs(self, rows: Any) -> Any:
        """The rows' ``sequence_log_probs`` under the starting adapter (what the tune started from), the tune's own
        weights back after."""
        import torch

        now, seen = {k: v.detach().clone() for k, v in self.adapter_state().items()}, self.tokens_seen
        self.load_adapter_state(self.start_state)
        try:
            with torch.no_grad():
                values = torch.cat([self.sequence_log_probs(rows[at:at + self.batch_size])
                                    for at in range(0, len(rows), self.batch_size)])
                if self.end_labels is not None:
                    ends = self._seen_ends()[1]
                    self.reference_ends = torch.cat([self.reference_ends, ends.to(self.reference_ends.device)])
        finally:
            self.load_adapter_state(now)
            self.tokens_seen = seen
        return values.detach().cpu()

    def look_state(self) -> dict[str, Any]:
        """What the looks added, for a checkpoint: a resumed tune adds it again (``load_look_state``); {} if none."""
        if not self.learned_away:
            return {}
        return {"learned_away": [[list(row) for row in rows] for rows in self.learned_away],
                "spread_words": self.spread_words, "note": self.note}

    def load_look_state(self, state: dict[str, Any]) -> None:
        """Adds the looks' rows this task has not yet (all on a resume; a replica, the main process's newest)."""
        for rows in state.get("learned_away", [])[len(self.learned_away):]:
            self.add_dropped([tuple(row) for row in rows])
        self.spread_words, self.note = list(state.get("spread_words", [])), state.get("note")

    def _batch_distance(self, dropped: Sequence[str]) -> tuple[Any, float]:
        """The kept texts' embeddings and the mean distance from each text of their batch (kept and dropped) to its
        nearest other kept one (0 with nothing to measure)."""
        from ...variety import nearest_distances
        from .embedding import embed_texts

        features = embed_texts([*self.kept_texts, *dropped])
        kept = features[:len(self.kept_texts)]
        distances = nearest_distances(features, kept, own=True)
        distances = distances[distances < float("inf")]
        return kept, float(distances.mean()) if len(distances) else 0.0

    @staticmethod
    def _variety(texts: Sequence[str]) -> float:
        """The studio's variety (Medium.diversity) of texts: the mean pairwise distance of their embeddings."""
        from ...variety import mean_pairwise_distance
        from .embedding import embed_texts

        return mean_pairwise_distance(embed_texts(texts)) if len(texts) > 1 else 0.0

    def adapter_state(self) -> dict[str, Any]:
        from peft.utils import get_peft_model_state_dict

        return get_peft_model_state_dict(self.handle.model, adapter_name=self.name)

    def load_adapter_state(self, state: dict[str, Any]) -> None:
        from peft.utils import set_peft_model_state_dict

        set_peft_model_state_dict(self.handle.model, state, adapter_name=self.name)

    def save(self, out_dir: Path) -> None:
        """The standard peft folder, written beside and renamed into place."""
        from safetensors.torch import save_file

        out_dir = Path(out_dir)
        tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        state = {k: v.detach().float().contiguous().cpu() for k, v in self.adapter_state().items()}
        save_file(state, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
        config = self.handle.model.peft_config[self.name]
        config.base_model_name_or_path = self.handle.source
        config.save_pretrained(str(tmp))
        if self.guarded:
            guard.write(tmp, *self.guarded)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(tmp, out_dir)
        self.handle.model.requires_grad_(False)
        # the trained weights are already resident: generating with this folder switches to them
        self.handle.adapters[str(out_dir.resolve())] = self.name
