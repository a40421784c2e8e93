"""The copy guard: a tuned version never writes a run of tokens from a text it learned, outside the prompt's words."""
from __future__ import annotations

import json

import pytest

from studio.errors import StudioError
from studio.media.text import guard


def _runs(ids, n):
    return {tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)}


def test_the_mask_rules_out_the_token_that_ends_a_learned_run_and_nothing_else():
    import torch

    forms = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 8])  # token 11 is token 8's word with a space
    runs = guard.RunGuard(torch.tensor([[5, 6], [5, 7]]), torch.tensor([8, 9]), forms, 11)
    seen = torch.tensor([[1, 5, 6, 0], [1, 5, 7, 0], [1, 6, 5, 0]])
    logits = torch.zeros(3, 14)  # an output layer wider than the tokenizer: the last two end no run
    masked = runs.mask(logits, seen, 3)
    assert torch.isinf(masked[0, 8]) and torch.isinf(masked[0, 11]) and torch.isinf(masked[1, 9])
    assert int(torch.isinf(masked).sum()) == 3  # row 2 ends "6 5": no learned prefix, nothing ruled out
    assert torch.equal(runs.mask(logits, seen, 1), logits)  # too early for a whole prefix


def test_runs_inside_the_prompt_stay_allowed(medium, tiny_llama):
    handle = medium.load(str(tiny_llama), "cpu")
    tokenizer = handle.tokenizer
    text = "the harbor sleeps under salt and gull"
    built = guard.build(tokenizer, [text], 3, "a poem about the harbor sleeps")
    forms = guard.token_forms(tokenizer)[0]
    ids = tokenizer.encode(text, add_special_tokens=False)
    learned = {tuple(forms[i] for i in ids[k:k + 3]): ids[k:k + 3] for k in range(len(ids) - 2)}
    table = {tuple(p) + (n,) for p, n in zip(built.prefixes.tolist(), built.nexts.tolist())}
    assert table < set(learned)  # some left out: those inside the prompt's words, and only those
    for run in set(learned) - table:
        assert " ".join(tokenizer.decode(learned[run]).split()) in "the harbor sleeps"
    assert guard.build(tokenizer, [text], 3, text) is None  # the prompt holds the whole text


def test_a_guarded_version_writes_no_run_of_a_text_it_learned(medium, tiny_llama, make_candidates, tmp_path,
                                                               monkeypatch):
    from studio.media.text.generate import sample

    handle = medium.load(str(tiny_llama), "cpu")
    params = medium.validate_params({"max_new_tokens": 24})
    seeds = range(4)
    # the untouched adapter writes as the base does: what it learned is what it would write again, word for word
    own = sample(handle, "a sea poem", seeds, params)[0]
    kept = make_candidates("a sea poem", own)
    settings = {**medium.tune_defaults, "objective": "sft", "copy_guard": 3}
    task = medium.tune_task(handle, kept, settings, None)
    task.save(tmp_path / "v1")
    stored = json.loads((tmp_path / "v1" / guard.GUARD_FILE).read_text())
    assert stored == {"tokens": 3, "texts": list(dict.fromkeys(own))}
    looks, mask = [], guard.RunGuard.mask
    monkeypatch.setattr(guard.RunGuard, "mask", lambda self, logits, seen, at: looks.append((seen, at))
                        or mask(self, logits, seen, at))
    guarded = sample(handle, "a sea poem", seeds, params, str(tmp_path / "v1"))[0]
    assert guarded != own
    banned = guard.build(handle.tokenizer, own, 3, "a sea poem")
    table = {tuple(p) + (n,) for p, n in zip(banned.prefixes.tolist(), banned.nexts.tolist())}
    seen, first, last = looks[-1][0], looks[0][1], looks[-1][1]
    forms = guard.token_forms(handle.tokenizer)[0]
    for row in seen[:, first - 2:last + 1].tolist():  # every run the rows wrote, the picked tokens as written
        assert not _runs([forms[i] for i in row], 3) & table
    # a version grown from a guarded one carries its parent's learned texts too; 0 writes no guard
    child = medium.tune_task(handle, make_candidates("a sea poem", ["salt gull harbor"], tag="n"),
                             {**settings, "copy_guard": 4}, str(tmp_path / "v1"))
    child.save(tmp_path / "v2")
    assert json.loads((tmp_path / "v2" / guard.GUARD_FILE).read_text()) == {"tokens": 4,
                                                                           "texts": [*dict.fromkeys(own), "salt gull harbor"]}
    plain = medium.tune_task(handle, kept, {**settings, "copy_guard": 0}, None)
    plain.save(tmp_path / "v3")
    assert not (tmp_path / "v3" / guard.GUARD_FILE).exists()
    assert sample(handle, "a sea poem", seeds, params, str(tmp_path / "v3"))[0] == own


def test_a_guard_of_one_token_is_refused_in_one_sentence(medium, tiny_llama, make_candidates):
    handle = medium.load(str(tiny_llama), "cpu")
    for bad in (1, -2, 2.5, "3", True):
        with pytest.raises(StudioError, match="copy_guard"):
            medium.tune_task(handle, make_candidates("a sea poem", ["salt"]), {**medium.tune_defaults,
                                                                            "copy_guard": bad}, None)


def test_a_broken_guard_file_says_so_rather_than_write_unguarded(tmp_path):
    assert guard.read(None) is None and guard.read(str(tmp_path)) is None  # no adapter, or one without a guard
    for broken in ("{not json", json.dumps({"tokens": 1, "texts": ["a"]}), json.dumps({"tokens": 3})):
        (tmp_path / guard.GUARD_FILE).write_text(broken)
        with pytest.raises(StudioError, match="copy guard .* cannot be read"):
            guard.read(str(tmp_path))
