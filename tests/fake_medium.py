"""A tiny fake medium: a categorical "model" over colour words, with a real LoRA-like adapter.

It drives the whole flow through the contract (generate, score, curate, tune, compare,
export) in milliseconds, so the core is tested apart from any real medium.  The model is
a folder with ``model.safetensors`` holding logits over COLOURS; a version's adapter is a
delta on those logits, trained by the shared trainer on the accepted candidates.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from studio.errors import StudioError
from studio.medium import Candidate, Generated, Medium, PromptLength
from studio.preference import PreferenceBatches, PreferenceTune, hold_setting
from studio.settings import Settings, setting

COLOURS = ["black", "grey", "brown", "red", "orange", "yellow", "green", "blue"]


def make_model(folder: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({"logits": torch.zeros(len(COLOURS))}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"kind": "fake"}))
    return folder


class Handle:
    def __init__(self, logits):
        self.logits = logits
        self.adapters: dict[str, Any] = {}
        self.loads = 0


def brightness(candidates: Sequence[Candidate]) -> list[float]:
    """Rewards colours late in the list (a plugin-style module:function scorer)."""
    return [COLOURS.index(Path(c.path).read_text()) / (len(COLOURS) - 1) for c in candidates]


class FakeTask:
    def __init__(self, handle: Handle, examples: Sequence[Candidate], init, prior=(), prior_weight=0.0,
                 dropped=(), objective="sft", beta=0.1, undecided=(), hold=0.0):
        import torch

        self.base = handle.logits
        self.delta = torch.nn.Parameter(init.clone())
        self.targets = torch.tensor([COLOURS.index(Path(c.path).read_text()) for c in examples])
        self.prior = torch.tensor([COLOURS.index(Path(c.path).read_text()) for c in prior], dtype=torch.long)
        self.prior_weight = prior_weight if len(self.prior) else 0.0
        self.preference = None
        if objective != "sft":  # rows: the kept colours, then the dropped ones, then the undecided (hold)
            self.rows = torch.cat([self.targets, torch.tensor([COLOURS.index(Path(c.path).read_text())
                                                               for c in [*dropped, *undecided]], dtype=torch.long)])
            self.preference = PreferenceBatches(objective, len(examples), len(examples) + len(dropped), 8, beta,
                                                [c.prompt for c in [*examples, *dropped]], undecided=len(undecided),
                                                hold=hold)
            self.reward_log = self.preference.reward_log  # each step's rewards in its log, as the media's tasks
            with torch.no_grad():
                self.preference.reference = self.log_probs(torch.arange(len(self.rows)))

    def log_probs(self, rows):
        import torch

        return torch.log_softmax(self.base + self.delta, dim=0)[self.rows[rows]]

    def parameters(self):
        return [self.delta]

    def loss(self, step, generator):
        import torch

        if self.preference is not None:
            return self.preference.loss(step, generator, self.log_probs)
        idx = torch.randint(len(self.targets), (8,), generator=generator)
        logp = torch.log_softmax(self.base + self.delta, dim=0)
        kept = -logp[self.targets[idx]].mean()
        if not self.prior_weight:
            return kept
        prior = -logp[self.prior[torch.randint(len(self.prior), (8,), generator=generator)]].mean()
        return (1 - self.prior_weight) * kept + self.prior_weight * prior

    def adapter_state(self):
        return {"delta": self.delta.detach()}

    def load_adapter_state(self, state):
        with __import__("torch").no_grad():
            self.delta.copy_(state["delta"])

    def save(self, out_dir: Path):
        from safetensors.torch import save_file

        out_dir.mkdir(parents=True, exist_ok=True)
        save_file({"delta": self.delta.detach().contiguous()}, str(out_dir / "adapter.safetensors"))


@dataclasses.dataclass
class FakeGenerate(Settings):
    temperature: float = setting(1.0, "sampling temperature", min=0, max=100)


@dataclasses.dataclass
class FakeTune(PreferenceTune):
    steps: int | None = setting(30, "optimisation steps", min=1, max=100_000)
    rank: int = setting(1, "rank", min=1, max=512)
    lr: float = setting(0.1, "learning rate", above=0, below=1)
    checkpoint_every: int = setting(5, "steps between checkpoints", min=1, max=100_000)
    slow: float = setting(0.0, "seconds each step sleeps (tests of cancel and resume)", min=0, max=60)
    fail: str = setting("", "nan: the loss turns NaN", choices=("", "nan"))
    stop: bool = setting(False, "the tune's first look finds something wrong (tests of the trainer's looks)")
    hold: float = hold_setting(0.0, "colours")


PROMPT_WORDS = 12  # how many words of a prompt the fake model reads


class FakeMedium(Medium):
    name = "fake"
    main_ext = "txt"
    default_scorer = "bright"
    export_formats = {"adapter": "the adapter's delta", "jsonl": "the kept colours, one JSON line each"}
    generate_settings = FakeGenerate
    tune_settings = FakeTune

    def default_model(self) -> str:
        import os

        return os.environ["FAKE_MODEL"]

    def load(self, model: str, device: str | None = None) -> Handle:
        from safetensors.torch import load_file

        path = Path(model) / "model.safetensors"
        if not path.exists():
            raise StudioError(f"The fake model folder {model} has no model.safetensors.")
        handle = Handle(load_file(str(path))["logits"])
        handle.loads += 1
        return handle

    def _logits(self, handle: Handle, adapter: str | None, strength: float = 1.0):
        from safetensors.torch import load_file

        if adapter is None:
            return handle.logits
        if adapter not in handle.adapters:
            handle.adapters[adapter] = load_file(str(Path(adapter) / "adapter.safetensors"))["delta"]
        return handle.logits + strength * handle.adapters[adapter]

    def generate(self, handle, prompt, seeds, params, adapter=None, strength=1.0):
        if params["temperature"] <= 0:
            raise StudioError("The fake temperature must be above 0.")
        logits = self._logits(handle, adapter, strength).numpy() / params["temperature"]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        out = []
        for seed in seeds:
            colour = COLOURS[np.random.default_rng(seed).choice(len(COLOURS), p=p)]
            out.append(Generated(seed=seed, files={"txt": colour.encode()}, text=colour))
        return out

    def prompt_length(self, model: str, prompt: str) -> PromptLength:
        """The fake model reads the first PROMPT_WORDS words (words, not tokens: a medium picks its unit)."""
        return PromptLength(len(prompt.split()), PROMPT_WORDS, "words")

    def scorers(self):
        return {"bright": lambda ctx: brightness,
                # 1 for the colour options["colour"] names (default red): a scorer that takes an option
                "colour": lambda ctx: (lambda cs: [float(Path(c.path).read_text() == ctx.options.get("colour", "red"))
                                                   for c in cs]),
                "favourites": lambda ctx: (lambda cs: [float(any(Path(f.path).read_text() == Path(c.path).read_text()
                                                                 for f in ctx.favourites)) for c in cs])}

    def embed(self, handle, candidates):
        feats = np.zeros((len(candidates), len(COLOURS)))
        for i, c in enumerate(candidates):
            feats[i, COLOURS.index(Path(c.path).read_text())] = 1.0
        return feats

    def tune_task(self, handle, examples, settings, parent_adapter, prior=(), dropped=(), undecided=()):
        import torch
        from safetensors.torch import load_file

        init = torch.zeros_like(handle.logits)
        if parent_adapter:
            init = load_file(str(Path(parent_adapter) / "adapter.safetensors"))["delta"]
        task = FakeTask(handle, examples, init, prior, float(settings.get("prior_weight", 0.0)), dropped,
                        settings.get("objective", "sft"), float(settings.get("beta", 0.1)), undecided,
                        float(settings.get("hold", 0.0)))
        if settings.get("fail") == "nan":
            task.base = task.base * float("nan")
        if settings.get("stop"):
            task.look = lambda: "it looked wrong"
        if settings.get("slow"):
            import time

            original = task.loss

            def slow_loss(step, generator):
                time.sleep(float(settings["slow"]))
                return original(step, generator)

            task.loss = slow_loss
        return task

    def export(self, handle, version, fmt, out_dir, curated):
        out = Path(out_dir)
        if fmt == "adapter":
            target = out / "adapter.safetensors"
            target.write_bytes((Path(version.path) / "adapter.safetensors").read_bytes())
            return [target]
        target = out / "curated.jsonl"
        target.write_text("".join(json.dumps({"prompt": c.prompt, "completion": Path(c.path).read_text()}) + "\n"
                                  for c in curated))
        return [target]


def curate_some(studio) -> None:
    """Twelve fake candidates, the best four kept: a curated set to tune on."""
    studio.generate("fake", "a colour", n=12)
    studio.curate("fake", best_of=4)
