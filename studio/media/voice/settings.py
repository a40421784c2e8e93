"""The voice medium's settings: how a take is read, and the tune (defaults, ranges and help, once)."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from ...errors import StudioError
from ...preference import PreferenceTune, beta_setting, objective_setting, tuned_beta_scale_setting
from ...settings import Settings, lr_setting, momentum_setting, setting


@dataclasses.dataclass
class VoiceGenerate(Settings):
    owner: ClassVar[str] = "voice"

    pace: float = setting(1.0, "length of every sound: above 1 reads slower, below 1 faster", min=0.5, max=2.0,
                          label="Pace (length)")
    pitch: float = setting(0.0, "pitch shift of the whole take in semitones", min=-12, max=12, label="Pitch shift")
    pitch_range: float = setting(1.0, "intonation: 0 is monotone, 1 the voice's own, above 1 livelier", min=0,
                                 max=3, label="Intonation")
    variation: float = setting(1.0, "how much seeds differ in pace, pitch and rhythm (0: every seed reads alike)",
                               min=0, max=3, label="Variation between takes")
    vocoder_iterations: int = setting(32, "Griffin-Lim rounds that turn the built-in voice's spectrogram into "
                                          "sound (more: cleaner, slower)", min=4, max=200, label="Vocoder rounds")
    # pitched: DNSMOS 0.47 against Griffin-Lim's 0.35 on 16 takes, and the pitch read is the pitch heard
    # (docs/voice.md, "The vocoder")
    vocoder: str = setting("pitched", "how the built-in voice's spectrogram becomes sound: pitched fills its envelope "
                                      "with the harmonics of the pitch read; griffin-lim finds phases for it as it is",
                           choices=("pitched", "griffin-lim"), label="Vocoder")
    batch_size: int = setting(8, "takes made together (memory)", min=1, max=64, label="Made together")
    max_length_ratio: float = setting(20.0, "SpeechT5: the longest take, in spectrogram frames per text token",
                                      min=1, max=100, label="Longest take (SpeechT5)")
    max_seconds: float = setting(15.0, "CSM: the longest take in seconds (it stops sooner when it ends the line)",
                                 min=0.5, max=90, label="Longest take (CSM)")


@dataclasses.dataclass
class VoiceTune(PreferenceTune):
    owner: ClassVar[str] = "voice tune"

    # kto and dpo (tune.py: the reading as a Gaussian around the predictors' output, the reward the starting
    # model's reading error minus the tune's) are the built-in voice's only; SpeechT5 and CSM tune with sft
    # kto met more of issue 22's targets than sft on the same rounds (docs/voice.md, "Learning from the dropped takes");
    # dpo pushed pace past the kept rate, 49 of 120 built-in checks against kto's 87 (docs/voice.md, "dpo for the ...")
    objective: str = objective_setting("kto", ("sft", "kto", "dpo"))
    # the reward is a difference of per-phoneme reading errors, a seed's draw one standard deviation off the
    # centre is about 0.01-0.03 of it (docs/voice.md, "Learning from the dropped takes"); 300 -> 100 -> 50 since the
    # pitched vocoder, each step meeting more of the built-in checks on fresh seeds (docs/voice.md, "beta on the
    # pitched vocoder"); 30 overshoots the kept takes' lean on pace (docs/objectives.md, voice_carry)
    beta: float = beta_setting(50.0, maximum=1e6, objectives=("kto", "dpo"))
    # a tune from a tuned version (the next round) starts where the last one left the readings; anchored as loosely,
    # the second round pushed pace past the keeps' and narrowed (docs/voice.md, "The second round's anchor")
    tuned_beta_scale: float = tuned_beta_scale_setting(2.0)

    lr: float = lr_setting(2e-3)
    # kto at beta 50 wins its keeps and drops early, and AdamW's momentum carried the first steps on: at 0 the voice
    # protocol met 90 of 120 checks against 89 (seeds 60-65), 77 against 76 on fresh seeds 66-71 (docs/voice.md,
    # "Without momentum"); SpeechT5 and CSM, which tune with sft, keep 0.9 (voice/__init__.py model_tune_defaults)
    momentum: float = momentum_setting(0.0, " (SpeechT5 and CSM, which tune with sft: 0.9 unless set)")
    # 30 -> 60 passes: 54 of 72 built-in checks against 47 on fresh seeds 24-29, pitch_range lifting on 2 of 6
    # seeds against none (docs/voice.md, "The dose with kto")
    epochs: float = setting(60.0, "passes over the kept set when steps is empty", above=0, max=10_000,
                            label="Passes over the kept set")
    intonation_as_read: bool = setting(False, "built-in voice: also learn which words each kept take raised or "
                                              "lowered (a falling end, a lifted word), not only its pace, pitch "
                                              "level and range", label="Learn the intonation")
    other_lines: int = setting(0, "built-in voice, kto / dpo: also learn each kept and dropped take's pace, pitch "
                                  "level and range on this many other lines (the voice's own training lines, as the "
                                  "starting model reads them), so a new line is read as the kept ones were",
                               min=0, max=64, label="Carry to other lines")

    def check(self, owner: str) -> None:
        if self.other_lines and self.objective == "sft":
            raise StudioError("other_lines carries the takes' readings through kto or dpo; set it to 0, or objective "
                              "to kto or dpo.")
        if self.prior_weight > 0:
            raise StudioError("The voice tune learns from the kept takes only; set prior_weight to 0.")
