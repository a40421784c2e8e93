"""Diffusion-KTO for the image tune (studio/media/image/tune.py): kept and dropped pictures, the starting model
as the reference (base or the parent version), sft when nothing was dropped, the same reference after a kill."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from killed import KilledAt
from studio.errors import StudioError
from studio.medium import Candidate
from studio.training import read_progress, run_tune

PROMPT = "a red circle on a blue background"
# every row in every batch (3 kept, 3 dropped); lr 2e-3: with the convolutions adapted too (the default) the tiny
# random UNet's shared error swamps the rest from 5e-3 (attention alone: from 5e-2)
# kto alone (sft_weight 0): the sft term beside it has a test of its own
SETTINGS = {"objective": "kto", "beta": 1000.0, "sft_weight": 0.0, "steps": 6, "lr": 2e-3, "rank": 4, "batch_size": 6,
            "checkpoint_every": 3}


def _pictures(folder, colour, tag: str, n: int = 3) -> list[Candidate]:
    """Noisy pictures of one colour at the tiny model's size, as a round's candidates."""
    folder.mkdir(parents=True, exist_ok=True)
    rng, out = np.random.default_rng(len(tag)), []
    for i in range(n):
        pixels = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 20, (16, 16, 3)), 0, 255)
        path = folder / f"{tag}{i}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        out.append(Candidate(id=f"{tag}{i}", medium="image", prompt=PROMPT, seed=i, params={}, version="base",
                             model="test", path=str(path), files={"png": str(path)}))
    return out


@pytest.fixture
def pictures(tmp_path):
    return _pictures(tmp_path / "round", (220, 40, 40), "kept"), _pictures(tmp_path / "round", (40, 40, 220), "drop")


def _task(medium, tiny_model, kept, dropped, parent=None, **extra):
    settings = {**medium.tune_defaults, **SETTINGS, **extra}
    return medium.tune_task(medium.load(str(tiny_model), "cpu"), kept, settings, parent, dropped=dropped), settings


def _mean_rewards(task, draws: int = 6) -> tuple[float, float]:
    """The mean implicit reward of the kept and of the dropped pictures over a few fixed noise draws."""
    kept_sum = dropped_sum = kept_n = dropped_n = 0.0
    for seed in range(draws):
        reward, kept = task.rewards(torch.Generator().manual_seed(1000 + seed))
        kept_sum, kept_n = kept_sum + float(reward[kept].sum()), kept_n + int(kept.sum())
        dropped_sum, dropped_n = dropped_sum + float(reward[~kept].sum()), dropped_n + int((~kept).sum())
    return kept_sum / kept_n, dropped_sum / dropped_n


def test_kto_learns_the_kept_pictures_and_unlearns_the_dropped_and_moves_the_output(medium, tiny_model, pictures,
                                                                                      tmp_path):
    kept, dropped = pictures
    task, settings = _task(medium, tiny_model, kept, dropped)
    assert task.objective == "kto" and task.kept_rows == 3 and len(task.buckets[0]["rows"]) == 6
    reward, is_kept = task.rewards(torch.Generator().manual_seed(0))
    assert 0 < int(is_kept.sum()) < len(is_kept)  # both sides in every batch
    assert float(task.loss(0, torch.Generator().manual_seed(0))) == pytest.approx(0.5, abs=1e-6)  # r = z0 = 0
    run_tune(task, settings, tmp_path / "job")
    kept_reward, dropped_reward = _mean_rewards(task)
    # the red (kept) pictures now denoise better than the blue (dropped) ones, against the base
    assert kept_reward > dropped_reward and kept_reward > 0
    logged = [r for r in read_progress(tmp_path / "job") if r["event"] == "step"]  # each step's batch, in its log
    assert len(logged) == settings["steps"] and all({"kept_reward", "dropped_reward"} <= set(r) for r in logged)
    task.save(tmp_path / "v1")
    handle = medium.load(str(tiny_model), "cpu")
    base = medium.generate(handle, PROMPT, [9], {"steps": 2})[0].files["png"]
    assert medium.generate(handle, PROMPT, [9], {"steps": 2}, adapter=str(tmp_path / "v1"))[0].files["png"] != base


def test_the_reference_is_the_base_for_a_new_tune(medium, tiny_model, pictures, tmp_path):
    kept, dropped = pictures
    task, settings = _task(medium, tiny_model, kept, dropped, steps=3)
    reward, _ = task.rewards(torch.Generator().manual_seed(3))
    assert reward.abs().max() < 1e-6  # step 0: the tune is its reference
    run_tune(task, settings, tmp_path / "job")
    moved, _ = task.rewards(torch.Generator().manual_seed(3))
    assert moved.abs().max() > 1e-6
    # the reference after training is still the base: peft's adapters switched off give the same errors
    error, ref, _ = task._errors(torch.Generator().manual_seed(3))
    task.denoiser.disable_adapters()
    try:
        plain, _, _ = task._errors(torch.Generator().manual_seed(3))
    finally:
        task.denoiser.enable_adapters()
    assert torch.allclose(ref, plain, atol=1e-6) and not torch.allclose(error, plain, atol=1e-6)


def test_the_reference_is_the_parent_version_when_tuning_from_it(medium, tiny_model, pictures, tmp_path):
    kept, dropped = pictures
    first, settings = _task(medium, tiny_model, kept, dropped, objective="sft")
    run_tune(first, settings, tmp_path / "v1-job")
    first.save(tmp_path / "v1")
    child, settings = _task(medium, tiny_model, kept, dropped, parent=str(tmp_path / "v1"), steps=3)
    reward, _ = child.rewards(torch.Generator().manual_seed(5))
    assert reward.abs().max() < 1e-6  # the child starts as the parent, which is its reference
    untouched, _ = _task(medium, tiny_model, kept, dropped, parent=str(tmp_path / "v1"))
    run_tune(child, settings, tmp_path / "v2-job")
    _, ref, _ = child._errors(torch.Generator().manual_seed(5))
    parent_error, _, _ = untouched._errors(torch.Generator().manual_seed(5))  # the parent, untrained
    assert torch.allclose(ref, parent_error, atol=1e-6)
    base, _ = _task(medium, tiny_model, kept, dropped)
    base_error, _, _ = base._errors(torch.Generator().manual_seed(5))
    assert not torch.allclose(ref, base_error, atol=1e-6)  # the parent, not the base


def test_a_few_drops_beside_many_keeps_are_drawn_in_their_share_and_never_past_half(medium, tiny_model, tmp_path):
    """23 kept and 3 dropped with the drops drawn up to half of every batch took three red stars to brown blobs."""
    red, blue = (220, 40, 40), (40, 40, 220)
    shares = {}
    for n_kept, n_dropped in ((6, 2), (3, 3), (2, 6)):
        kept = _pictures(tmp_path / f"k{n_kept}", red, f"kept{n_kept}-", n_kept)
        dropped = _pictures(tmp_path / f"d{n_kept}", blue, f"drop{n_kept}-", n_dropped)
        task, _ = _task(medium, tiny_model, kept, dropped, batch_size=8)
        rows = torch.cat([task._batch(torch.Generator().manual_seed(s))[1] for s in range(50)])
        shares[n_kept, n_dropped] = float((rows >= task.kept_rows).float().mean())
    assert shares[6, 2] == pytest.approx(0.25) and shares[3, 3] == shares[2, 6] == pytest.approx(0.5), shares


def test_no_drops_tunes_the_kept_set_alone(medium, tiny_model, pictures):
    kept, _ = pictures
    kto, _ = _task(medium, tiny_model, kept, [])
    sft, _ = _task(medium, tiny_model, kept, [], objective="sft")
    assert kto.objective == "sft" and len(kto.buckets[0]["rows"]) == 3
    assert float(kto.loss(2, torch.Generator().manual_seed(7))) == float(sft.loss(2, torch.Generator().manual_seed(7)))


def test_a_killed_kto_tune_resumes_with_the_same_reference(medium, tiny_model, pictures, tmp_path):
    kept, dropped = pictures
    straight, settings = _task(medium, tiny_model, kept, dropped)
    run_tune(straight, settings, tmp_path / "a")
    crashed, _ = _task(medium, tiny_model, kept, dropped)
    with pytest.raises(RuntimeError):
        run_tune(KilledAt(crashed, 4), settings, tmp_path / "b")
    resumed, _ = _task(medium, tiny_model, kept, dropped)  # as the worker rebuilds it after a kill
    for name, value in crashed.start.items():
        assert torch.equal(resumed.start[name], value)
    run_tune(resumed, settings, tmp_path / "b")  # from the step-3 checkpoint
    want, got = straight.adapter_state(), resumed.adapter_state()
    for name in want:
        assert torch.allclose(want[name], got[name], atol=1e-5), name


@pytest.mark.slow
def test_a_kto_tune_with_nothing_dropped_says_it_learned_the_kept_set_alone(workspace, tiny_model):
    from studio.engine import Studio

    studio = Studio(workspace)
    studio.use_model("image", str(tiny_model))
    batch = studio.generate("image", PROMPT, n=3, params={"steps": 2})
    studio.curate("image", accept=[batch[0].id, batch[1].id], apply_rule=False)  # the third stays pending
    result = studio.tune("image", settings={"objective": "kto", "steps": 2, "rank": 2})
    assert "no dropped candidates" in result["note"] and result["dropped"] == 0
    studio.curate("image", reject=[batch[2].id], apply_rule=False)
    again = studio.tune("image", settings={"objective": "kto", "steps": 2, "rank": 2})
    assert again["dropped"] == 1 and "note" not in again


def test_the_image_objective_is_sft_kto_or_dpo(medium):
    from studio.errors import StudioError

    defaults = medium.tune_defaults  # docs/objectives.md, "Pictures: the bottom of the batch"
    assert (defaults["objective"], defaults["beta"], defaults["drop_share"]) == ("kto", 1000.0, 0.25)
    assert medium.parse_tune_settings({"objective": "kto", "beta": 300})["beta"] == 300
    assert medium.parse_tune_settings({"objective": "dpo"})["objective"] == "dpo"
    with pytest.raises(StudioError, match="objective"):
        medium.parse_tune_settings({"objective": "ipo"})
    with pytest.raises(StudioError, match="prior_weight"):
        medium.parse_tune_settings({"objective": "kto", "prior_weight": 0.5})


def test_sft_weight_adds_the_kept_pictures_own_loss_to_kto(medium, tiny_model, pictures):
    from studio.preference import kto_loss

    kept, dropped = pictures
    task, _ = _task(medium, tiny_model, kept, dropped, sft_weight=0.5)
    error, ref, is_kept = task._errors(torch.Generator().manual_seed(3))  # the draw the loss makes with this seed
    expected = kto_loss(-error, -ref, is_kept, task.beta) + 0.5 * error[is_kept].mean()
    assert float(task.loss(0, torch.Generator().manual_seed(3))) == pytest.approx(float(expected), rel=1e-5)
    assert float(expected) > 0.5  # the sft term is there: kto alone is 0.5 at the start
    assert medium.tune_defaults["sft_weight"] == 1.0  # the default (docs/objectives.md)
    sft = medium.tune_task(task.handle, kept, {**medium.tune_defaults, **SETTINGS, "objective": "sft",
                                                "sft_weight": 1.0}, None, dropped=dropped)
    assert sft.sft_weight == 0.0  # like beta, a kto setting that sft leaves alone


def test_dpo_pairs_a_kept_and_a_dropped_picture_of_one_prompt_under_one_noise_and_widens_their_margin(
        medium, tiny_model, pictures, tmp_path):
    from studio.preference import dpo_loss

    kept, dropped = pictures
    task, settings = _task(medium, tiny_model, kept, dropped, objective="dpo", steps=8, sft_weight=0.5)
    assert len(task.buckets[0]["pairs"]) == 9  # every kept picture beside every dropped one: one prompt
    idx, noisy, timesteps, target, is_kept, _ = task._draw(torch.Generator().manual_seed(5))
    half = len(idx) // 2
    assert half == 3 and bool(is_kept[:half].all()) and not bool(is_kept[half:].any())
    assert torch.equal(timesteps[:half], timesteps[half:])  # the pair's two pictures at one timestep ...
    x0 = task.buckets[0]["latents"][torch.tensor([task.buckets[0]["rows"].tolist().index(i) for i in idx.tolist()])]
    assert not torch.allclose(noisy[:half], noisy[half:])  # ... of their own pictures ...
    noise_of = task.noise_scheduler.add_noise(x0, torch.zeros_like(x0), timesteps)  # ... under one noise
    assert torch.allclose(noisy[:half] - noise_of[:half], noisy[half:] - noise_of[half:], atol=1e-5)
    error, ref, _ = task._errors(torch.Generator().manual_seed(3))  # the draw the loss makes with this seed
    expected = dpo_loss(-error[:3], -ref[:3], -error[3:], -ref[3:], task.beta) + 0.5 * error[:3].mean()
    assert float(task.loss(0, torch.Generator().manual_seed(3))) == pytest.approx(float(expected), rel=1e-5)
    run_tune(task, settings, tmp_path / "job")
    kept_reward, dropped_reward = _mean_rewards(task)
    assert kept_reward > dropped_reward  # the red (kept) pictures now denoise better, against the base, than the blue
    other = _pictures(tmp_path / "other", (40, 40, 220), "elsewhere")
    for c in other:
        c.prompt = "a blue square"
    with pytest.raises(StudioError, match="dpo objective needs a prompt with both"):
        _task(medium, tiny_model, kept, other, objective="dpo")


def test_own_noise_trains_each_picture_at_the_noise_its_seed_drew(medium, tiny_model, pictures, tmp_path):
    """own_noise 1: every row of a batch is noised with the starting noise the pipeline drew for its seed (mirrored
    with a mirrored picture); a share below 1 noises that share of the rows so, the rest with fresh noise; a picture
    that trains at another size than it was made at gets fresh noise."""
    kept, dropped = pictures
    task, settings = _task(medium, tiny_model, kept, dropped, own_noise=1.0, mirror=True)
    bucket, pipe = task.buckets[0], task.pipe
    examples = [*kept, *dropped]
    seen = []
    real = task._noised
    task._noised = lambda x0, noise, generator, paired=False: seen.append(noise) or real(x0, noise, generator, paired)
    idx, *_ = task._draw(torch.Generator().manual_seed(5))
    (noise,) = seen
    _, channels, h, w = bucket["latents"].shape
    scale = pipe.vae_scale_factor
    for row, drawn in zip(idx.tolist(), noise):
        start = pipe.prepare_latents(1, channels, h * scale, w * scale, torch.float32, "cpu",
                                     torch.Generator("cpu").manual_seed(examples[row].seed))[0]
        start = start / pipe.scheduler.init_noise_sigma  # the unit draw, before the sampler's scale
        assert torch.equal(drawn, start) or torch.equal(drawn, start.flip(-1))
    # a half-precision pipeline draws its noise in half precision: the same draw, not float32's rounded
    from diffusers.utils.torch_utils import randn_tensor

    from studio.media.image.tune import _own_noise
    halves, _ = _own_noise(kept[:1], bucket["latents"], [True], torch.float16)
    drawn = randn_tensor((1, channels, h, w), generator=[torch.Generator("cpu").manual_seed(kept[0].seed)],
                         dtype=torch.float16)
    assert torch.equal(halves[0], drawn[0].float())
    own = {i: (n, n.flip(-1)) for i, n in enumerate(bucket["own"][0])}
    half, _ = _task(medium, tiny_model, kept, dropped, own_noise=0.5, batch_size=64)
    real_half = half._noised
    half._noised = lambda x0, noise, generator, paired=False: (seen.append(noise)
                                                               or real_half(x0, noise, generator, paired))
    idx, *_ = half._draw(torch.Generator().manual_seed(5))
    mine = [any(torch.equal(d, o) for o in own[half.buckets[0]["rows"].tolist().index(i)])
            for i, d in zip(idx.tolist(), seen[-1])]
    assert 16 < sum(mine) < 48  # about half of 64 rows
    # off by default: fresh noise, the same draws as before the setting existed
    plain, _ = _task(medium, tiny_model, kept, dropped)
    assert plain.own_noise == 0 and "own" not in plain.buckets[0]
    # a picture made at another size than it trains at has no noise of its own
    big = _pictures(tmp_path / "big", (220, 40, 40), "big", n=1)
    Image.new("RGB", (48, 32), (220, 40, 40)).save(big[0].path)
    task, _ = _task(medium, tiny_model, kept, dropped, own_noise=1.0, size=16)
    assert bool(task.buckets[0]["own"][1].all())
    task, _ = _task(medium, tiny_model, [*kept, *big], dropped, own_noise=1.0, size=16)
    has = dict(zip(task.buckets[0]["rows"].tolist(), task.buckets[0]["own"][1].tolist()))
    assert has[3] is False and all(has[i] for i in (0, 1, 2, 4, 5, 6))
    run_tune(task, {**settings, "size": 16}, tmp_path / "job")  # and it trains


def test_a_tune_that_stops_when_it_narrows_looks_at_trial_pictures_against_the_kept_set(medium, tiny_model, pictures,
                                                                                       tmp_path):
    """stop_narrowing: after each quarter, 16 trial pictures from the unsaved adapter (the kept prompts on seeds
    from TRIAL_SEED); below that share of the kept set's variety the tune goes back to its last good look."""
    from studio.media.image.tune import TRIAL_PICTURES

    kept, dropped = pictures
    task, settings = _task(medium, tiny_model, kept, dropped, stop_narrowing=0.8)
    assert task.look is not None and task.kept_variety > 0
    # a bar no trial batch can reach: the first look says so in one sentence, and the tune ends where it started
    task.stop_narrowing = 1e6
    said = task.look()
    assert said.startswith(f"its {TRIAL_PICTURES} trial pictures were ") and said.endswith("as varied as the kept set")
    assert _training_adapter_alone(task)
    start = {k: v.clone() for k, v in task.adapter_state().items()}
    result = run_tune(task, settings, tmp_path / "job")
    assert result["stopped_at"] == 2 and result["good_step"] == 0
    assert all(torch.equal(v, start[k]) for k, v in task.adapter_state().items())
    # looking leaves the tune as it was: the same loss before and after a look that finds nothing wrong
    task.stop_narrowing = 1e-9
    before = task.loss(0, torch.Generator().manual_seed(3)).item()
    assert task.look() is None
    after = task.loss(0, torch.Generator().manual_seed(3)).item()
    assert after == pytest.approx(before, abs=1e-7) and all(p.requires_grad for p in task.parameters())
    assert task.trial_key not in task.handle.adapters and task.handle.active is None
    # off by default, and a value out of range is one sentence
    assert _task(medium, tiny_model, kept, dropped)[0].look is None
    with pytest.raises(StudioError, match="stop_narrowing"):
        _task(medium, tiny_model, kept, dropped, stop_narrowing=-1)


def _training_adapter_alone(task) -> bool:
    """The training adapter is the denoiser's only active one, at full weight."""
    from studio.media.image.tune import ADAPTER

    return list(task.denoiser.active_adapters()) == [ADAPTER]


def test_rows_with_an_empty_prompt_learn_what_guidances_unguided_half_sees(medium, tiny_model, pictures):
    import dataclasses

    kept, dropped = pictures
    task, _ = _task(medium, tiny_model, kept, dropped, empty_prompt=1.0)
    plain, _ = _task(medium, tiny_model, kept, dropped)
    draw, same = task._draw(torch.Generator().manual_seed(5)), plain._draw(torch.Generator().manual_seed(5))
    for a, b in zip(draw[:5], same[:5]):  # the same rows, noise and timesteps: the prompt is drawn last
        assert torch.equal(a, b)
    assert bool(draw[5].all()) and same[5] is None
    # every row with the empty prompt: the denoising errors of the same pictures kept and dropped under the prompt ""
    blank = [dataclasses.replace(c, prompt="") for c in kept], [dataclasses.replace(c, prompt="") for c in dropped]
    unprompted, _ = _task(medium, tiny_model, *blank)
    errors = [t._errors(torch.Generator().manual_seed(0))[0] for t in (task, unprompted, plain)]
    assert torch.allclose(errors[0], errors[1], atol=1e-6) and not torch.allclose(errors[2], errors[1], atol=1e-6)
    # with the text encoder learning too, the empty rows are encoded through it (its graph), as "" prompts are
    learning = [_task(medium, tiny_model, *pair, train_text_encoder=True, **extra)[0]
                for pair, extra in (((kept, dropped), {"empty_prompt": 1.0}), (blank, {}), ((kept, dropped), {}))]
    errors = [t._errors(torch.Generator().manual_seed(0))[0] for t in learning]
    assert torch.allclose(errors[0], errors[1], atol=1e-6) and not torch.allclose(errors[2], errors[1], atol=1e-6)
    half, _ = _task(medium, tiny_model, kept, dropped, empty_prompt=0.5)
    shares = [float(half._draw(torch.Generator().manual_seed(s))[5].float().mean()) for s in range(20)]
    assert 0.3 < sum(shares) / len(shares) < 0.7



def test_guided_learns_the_mix_guidance_draws_at_each_pictures_own_strength_and_negative_prompt(medium, tiny_model,
                                                                                                  pictures, tmp_path):
    import dataclasses

    kept, dropped = pictures
    drawn = [({"guidance": 4.0, "negative_prompt": "blurry"}, "blurry"), ({"guidance": 1.0}, ""), ({"guidance": 7.5}, "")]
    kept = [dataclasses.replace(c, params=p) for c, (p, _) in zip(kept, drawn)]
    task, settings = _task(medium, tiny_model, kept, dropped)  # empty: on for a Stable Diffusion 1.x model
    prompted, _ = _task(medium, tiny_model, kept, dropped, guided=False)
    assert task.guided and not prompted.guided
    # the same step in what the sampler draws: the rate over the kept pictures' mean strength, (4 + 1 + 7.5) / 3
    assert task.lr_scale == pytest.approx(3 / 12.5) and prompted.lr_scale == 1.0
    # guidance's other half: each picture under its negative prompt (or none) instead of its prompt
    negatives = [dataclasses.replace(c, prompt=n) for c, (_, n) in zip(kept, drawn)]
    unguided, _ = _task(medium, tiny_model, negatives, [dataclasses.replace(c, prompt="") for c in dropped],
                        guided=False)
    idx, noisy, timesteps, *_ = task._draw(torch.Generator().manual_seed(3))
    with torch.no_grad():
        for t in (task, prompted, unguided):  # a trained-looking adapter, alike in the three, so the halves differ
            for name, p in sorted(t.params.items()):
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))) * 0.05)
        mixed, c, u = (t._predict(idx, noisy, timesteps) for t in (task, prompted, unguided))
    w = torch.tensor([4.0, 1.0, 7.5, 4.0, 4.0, 4.0])[idx].view(-1, 1, 1, 1)  # the dropped: the default strength, 4
    assert torch.allclose(mixed, u + w * (c - u), atol=1e-4)
    assert not torch.allclose(mixed, c, atol=1e-3)  # not the prediction with the prompt alone
    one = (idx == 1).nonzero().flatten()  # the picture drawn at strength 1: its prompt's prediction exactly
    assert len(one) and torch.allclose(mixed[one], c[one], atol=1e-5)
    result = run_tune(task, settings, tmp_path / "job")
    assert np.isfinite(result["loss"])


def test_min_snr_weighs_the_last_steps_less_and_for_v_prediction_the_noisiest_too(medium, tiny_model, pictures,
                                                                                    tmp_path):
    from diffusers import DDPMScheduler

    from studio.media.image.defaults import SCHEDULE
    from studio.media.image.tune import min_snr_weights

    task, settings = _task(medium, tiny_model, *pictures, min_snr_gamma=5.0)  # a noise-predicting tiny SD
    weights = task.snr_weights
    assert task.prediction == "epsilon" and weights.mean() == pytest.approx(1.0, abs=1e-4)  # beta keeps its scale
    assert weights[0] < 0.05 and weights[999] == pytest.approx(float(weights.max()))  # gamma / SNR where SNR is large
    v = min_snr_weights(DDPMScheduler(**SCHEDULE).alphas_cumprod, 5.0, "v_prediction")  # the built-in sketchbook's
    assert v[999] < 0.05 and v[0] < 0.05 and v[200:500].min() > 1.0  # the middle counts most
    result = run_tune(task, settings, tmp_path / "job")
    assert np.isfinite(result["loss"])
    plain, _ = _task(medium, tiny_model, *pictures)
    assert plain.snr_weights is None


def test_min_timestep_draws_every_row_from_the_noisier_share_of_the_schedule(medium, tiny_model, pictures, tmp_path):
    task, settings = _task(medium, tiny_model, *pictures, min_timestep=0.6)
    default, _ = _task(medium, tiny_model, *pictures)  # the noisier three quarters
    plain, _ = _task(medium, tiny_model, *pictures, min_timestep=0.0)
    generator, drawn, usual, everywhere = torch.Generator().manual_seed(0), [], [], []
    for _ in range(20):
        drawn += task._draw(generator)[2].tolist()
        usual += default._draw(generator)[2].tolist()
        everywhere += plain._draw(generator)[2].tolist()
    assert min(drawn) >= 600 and max(drawn) <= 999 and min(usual) >= 250 and min(everywhere) < 250
    assert np.isfinite(run_tune(task, settings, tmp_path / "job")["loss"])


def test_variety_floor_pulls_the_tunes_own_pictures_apart_only_below_the_kept_sets_variety(medium, tiny_model,
                                                                                            pictures, tmp_path):
    """variety_floor: pictures the tune draws itself (fresh noise, a few steps, through the VAE), their spread
    against the kept set's: nothing above it, a loss with gradients into the adapter below it; it adds to the
    objective's loss; two kept pictures at least, models up to 256 px; off by default."""
    kept, dropped = pictures
    task, settings = _task(medium, tiny_model, kept, dropped, variety_floor=1.0)
    from studio.media.image.scorers import image_features
    from studio.variety import mean_pairwise_euclidean

    features = image_features(kept)
    assert task.floor == pytest.approx(mean_pairwise_euclidean(features))
    assert mean_pairwise_euclidean(features + 0.3) == pytest.approx(task.floor)  # a shared change is no narrowing
    drawn = task.drawn_features(task._drawing_noise(torch.Generator().manual_seed(0)))
    assert drawn.shape == (8, 192)
    task.floor = 1e-6  # any spread is above it
    assert float(task.floor_loss(drawn)) == 0.0
    task.floor = 1e6  # far above any draw: the loss nears 1, all alike
    loss = task.floor_loss(drawn)
    assert 0.9 < float(loss) <= 1.0
    loss.backward()
    grads = [p.grad for p in task.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)  # the drawn pictures move with the adapter
    for p in task.parameters():
        p.grad = None
    task.variety_floor = 10.0  # kto's loss is at most 1 a row: more than 9 is the floor's
    assert float(task.loss(0, torch.Generator().manual_seed(2))) > 9.0
    task.variety_floor, task.floor = 1.0, mean_pairwise_euclidean(features)
    run_tune(task, settings, tmp_path / "job")
    with pytest.raises(StudioError, match="at least two kept pictures"):
        _task(medium, tiny_model, kept[:1], dropped, variety_floor=1.0)
    with pytest.raises(StudioError, match="only on models up to 256 px"):
        _task(medium, tiny_model, kept, dropped, variety_floor=1.0, size=320)
    plain, _ = _task(medium, tiny_model, kept, dropped)
    assert plain.variety_floor == 0 and not hasattr(plain, "floor")


def test_preference_pull_draws_the_tunes_pictures_toward_the_keeps_and_stops_at_the_kept_sets_level(
        medium, tiny_model, pictures, tmp_path):
    """preference_pull: a logistic model of keeps against drops on the pictures' unit 8x8 features (the
    preference scorer's fit, a strong ridge); the tune's drawn pictures pulled up to the kept set's mean
    probability and no further, with gradients into the adapter; drops needed."""
    kept, dropped = pictures
    task, settings = _task(medium, tiny_model, kept, dropped, preference_pull=1.0)
    from studio.media.image.scorers import image_features

    keep, drop = image_features(kept), image_features(dropped)
    unit = np.concatenate([keep, drop])
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    mean, std, weights, bias = (t.numpy() if hasattr(t, "numpy") else t for t in task.pull_model)
    prob = 1 / (1 + np.exp(-(((unit - mean) / std) @ weights + bias)))
    assert prob[:len(kept)].mean() == pytest.approx(task.pull_level)  # the level is the kept set's own
    assert prob[:len(kept)].mean() > prob[len(kept):].mean()  # the model tells them apart ...
    from studio.scoring import fit_preference

    labels = np.array([1.0] * len(kept) + [0.0] * len(dropped))  # the scorer's own ridge fits the keeps closer to 1
    assert task.pull_level < fit_preference(unit, labels)(unit[:len(kept)]).mean()
    as_kept = torch.as_tensor(keep, dtype=torch.float32)
    assert float(task.pull_loss(as_kept)) < float(task.pull_loss(torch.as_tensor(drop, dtype=torch.float32)))
    task.pull_level = 0.0  # nothing is below it: no pull
    drawn = task.drawn_features(task._drawing_noise(torch.Generator().manual_seed(0)))
    assert float(task.pull_loss(drawn)) == 0.0
    task.pull_level = 1.0
    loss = task.pull_loss(drawn)
    assert 0.0 < float(loss) <= 1.0
    loss.backward()
    grads = [p.grad for p in task.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    for p in task.parameters():
        p.grad = None
    task.pull_level = float(prob[:len(kept)].mean())
    run_tune(task, settings, tmp_path / "job")
    with pytest.raises(StudioError, match="no dropped pictures"):
        _task(medium, tiny_model, kept, (), preference_pull=1.0)
    with pytest.raises(StudioError, match="only on models up to 256 px"):
        _task(medium, tiny_model, kept, dropped, preference_pull=1.0, size=320)


def test_extrapolate_stores_the_version_k_times_as_far_from_its_start_as_the_tune_took_it(medium, tiny_model,
                                                                                          pictures, tmp_path):
    """ExPO on the LoRA: each up-projection B saved at start + k (trained - start), A as trained, so a new LoRA
    adds exactly k times what it learned, and a parent's grows from the parent; the task keeps its trained weights."""
    from safetensors.torch import load_file

    kept, dropped = pictures
    saved = {}
    for k in (1.0, 1.5):
        task, settings = _task(medium, tiny_model, kept, dropped, extrapolate=k)
        run_tune(task, settings, tmp_path / f"job{k}")
        trained = {name: p.detach().clone() for name, p in task.params.items()}
        task.save(tmp_path / f"v{k}")
        assert all(torch.equal(p, trained[name]) for name, p in task.params.items())  # back as trained
        saved[k] = load_file(str(tmp_path / f"v{k}" / "pytorch_lora_weights.safetensors"))
    assert saved[1.0].keys() == saved[1.5].keys()
    ups = [key for key in saved[1.0] if "lora_B" in key or "lora.up" in key]
    assert ups and len(ups) < len(saved[1.0])
    for key, value in saved[1.0].items():  # the same tune (same seed): B 1.5 times as far from zero, A the same
        assert torch.allclose(saved[1.5][key], value * (1.5 if key in ups else 1.0), atol=1e-7), key
    # from a parent: its start is the parent's (saved) adapter, and the saved child is 1.5 times its change
    child, settings = _task(medium, tiny_model, kept, dropped, parent=str(tmp_path / "v1.5"), extrapolate=1.5,
                            steps=2)
    run_tune(child, settings, tmp_path / "child-job")
    trained = {name: p.detach().clone() for name, p in child.params.items()}
    from studio.adapters import extrapolated

    with extrapolated(child.params, child.start, child.extrapolate):
        for name, p in child.params.items():
            start = child.start[name]
            want = start + 1.5 * (trained[name] - start) if ".lora_B." in name else trained[name]
            assert torch.allclose(p, want, atol=1e-7)
            assert ".lora_B." not in name or start.abs().sum() > 0  # the parent's, not zero
    plain, _ = _task(medium, tiny_model, kept, dropped, objective="sft", extrapolate=1.0)
    assert plain.start is None  # sft as learned keeps no copy of its start
