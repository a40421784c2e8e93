"""LoRA SFT through the shared trainer, and the three export formats read by stock libraries."""
from __future__ import annotations

import json

import pytest

from studio.errors import StudioError
from studio.medium import Version
from studio.training import run_tune

TEXTS = ["salt wave salt wave\nthe harbor sleeps", "gull over salt\nthe harbor sleeps", "salt salt salt"]


def test_packing_has_no_padding_and_masks_prompts():
    from studio.media.text.packing import IGNORE, packed_rows, padded_rows

    examples = [([1, 2, 3, 4], [False, False, True, True]), ([5, 6, 7], [False, True, True])]
    inputs, labels, positions = packed_rows(examples, seq_len=5, min_rows=3)
    assert len(inputs) >= 3 and all(len(row) == 5 for row in inputs)
    flat_in = [t for row in inputs for t in row]
    flat_lab = [t for row in labels for t in row]
    assert all(lab in (IGNORE, tok) for tok, lab in zip(flat_in, flat_lab))
    assert all(lab == IGNORE for tok, lab in zip(flat_in, flat_lab) if tok in (1, 2, 5))
    starts_mid = [row for row in range(len(inputs)) if inputs[row][0] not in (1, 5)]
    assert starts_mid  # 7-token cycles in 5-token rows: some rows begin inside an example
    assert all(labels[row][0] == IGNORE and positions[row][0] == 0 for row in starts_mid)
    pad_in, pad_lab, masks = padded_rows(examples, pad_id=0)
    assert pad_in[1] == [5, 6, 7, 0] and masks[1] == [1, 1, 1, 0] and pad_lab[1][-1] == IGNORE


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_gpt2"])
def test_tune_save_and_stock_peft_loads_it(medium, fixture, request, tmp_path, make_candidates):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder = request.getfixturevalue(fixture)
    handle = medium.load(str(folder), "cpu")
    examples = make_candidates("a sea poem", TEXTS)
    settings = {**medium.tune_defaults, "steps": 12, "lr": 3e-2, "checkpoint_every": 5}
    task = medium.tune_task(handle, examples, settings, None)
    first = float(task.loss(0, torch.Generator().manual_seed(0)))
    result = run_tune(task, settings, tmp_path / "job")
    assert result["steps"] == 12 and result["loss"] < first
    task.save(tmp_path / "v1")
    assert sorted(p.name for p in (tmp_path / "v1").iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]

    version = Version(medium="text", name="v1", parent="base", model=str(folder), settings=settings,
                      curated=[c.id for c in examples], path=str(tmp_path / "v1"))
    medium.export(handle, version, "peft", tmp_path / "out-peft", examples)
    ids = torch.tensor([handle.tokenizer("a sea poem\n")["input_ids"]])
    base = AutoModelForCausalLM.from_pretrained(str(folder))
    with torch.no_grad():
        plain = base(ids).logits
        tuned = PeftModel.from_pretrained(base, str(tmp_path / "out-peft"))(ids).logits
    assert not torch.allclose(plain, tuned, atol=1e-4)  # the adapter changes the output

    medium.export(handle, version, "merged", tmp_path / "out-merged", examples)
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "out-merged"), use_safetensors=True)
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, tuned, atol=1e-4)


def test_tune_from_a_parent_starts_from_its_weights(medium, tiny_llama, tmp_path, make_candidates):
    import torch

    handle = medium.load(str(tiny_llama), "cpu")
    examples = make_candidates("a sea poem", TEXTS)
    settings = {**medium.tune_defaults, "steps": 8, "lr": 3e-2, "rank": 4}
    task = medium.tune_task(handle, examples, settings, None)
    run_tune(task, settings, tmp_path / "job1")
    task.save(tmp_path / "v1")
    child = medium.tune_task(handle, examples, {**settings, "rank": 16}, str(tmp_path / "v1"))
    parent_state, child_state = task.adapter_state(), child.adapter_state()
    assert parent_state.keys() == child_state.keys()
    assert all(torch.equal(parent_state[k], child_state[k]) for k in parent_state)


def test_tune_needs_examples(medium, tiny_llama):
    handle = medium.load(str(tiny_llama), "cpu")
    with pytest.raises(StudioError, match="accept at least one"):
        medium.tune_task(handle, [], dict(medium.tune_defaults), None)


def test_jsonl_export_is_read_by_datasets(medium, tiny_llama, tmp_path, make_candidates):
    import datasets

    handle = medium.load(str(tiny_llama), "cpu")
    from studio.media.text.prompting import completion_ids

    curated = make_candidates("a sea poem", TEXTS)
    for i, c in enumerate(curated):
        c.scores = {"style": 0.5 + i / 10}
    # the last one stopped at its length limit, the others below theirs
    curated[2].params = {"max_new_tokens": len(completion_ids(handle.tokenizer, TEXTS[2], ended=False))}
    curated[1].params = {"max_new_tokens": 1000}
    files = medium.export(handle, None, "jsonl", tmp_path / "out", curated)
    data = datasets.load_dataset("json", data_files=str(files[0]), split="train")
    assert data["completion"] == TEXTS and data["prompt"] == ["a sea poem"] * 3
    assert data[2]["scores"]["style"] == pytest.approx(0.7)
    assert data["ended"] == [True, True, False]


@pytest.mark.parametrize("fmt, version, message", [("peft", None, "base model has no adapter"),
                                                    ("onnx", None, "Unknown text export format"),
                                                    ("jsonl", None, "no kept text")])
def test_bad_exports_write_nothing(medium, tiny_llama, tmp_path, fmt, version, message):
    handle = medium.load(str(tiny_llama), "cpu")
    with pytest.raises(StudioError, match=message):
        medium.export(handle, version, fmt, tmp_path / "out", [])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_export_refuses_a_full_folder(medium, tiny_llama, tmp_path, make_candidates):
    handle = medium.load(str(tiny_llama), "cpu")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(StudioError, match="not empty"):
        medium.export(handle, None, "jsonl", tmp_path / "out", make_candidates("p", ["x"]))
    assert json.dumps(sorted(p.name for p in (tmp_path / "out").iterdir())) == '["keep.txt"]'


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_gpt2"])
def test_packed_examples_do_not_see_each_other(medium, fixture, request, make_candidates):
    """On a packed row each example gets the logits it gets alone: no copying across examples."""
    import torch

    handle = medium.load(str(request.getfixturevalue(fixture)), "cpu")
    task = medium.tune_task(handle, make_candidates("a sea poem", TEXTS), dict(medium.tune_defaults), None)
    row = task.inputs[:1]
    starts = [i for i, p in enumerate(task.extra[0].tolist()) if p == 0] + [row.shape[1]]
    with torch.no_grad():
        packed = task.logits(torch.tensor([0]))[0]
        for begin, end in zip(starts, starts[1:]):
            alone = handle.model(input_ids=row[:, begin:end]).logits[0]
            assert torch.allclose(packed[begin:end], alone, atol=1e-4)


def test_two_identical_tunes_give_identical_weights(medium, tiny_llama, tmp_path, make_candidates):
    """Same curated set, settings and seed => the same adapter (the LoRA init is seeded too)."""
    import torch

    examples = make_candidates("a sea poem", TEXTS)
    settings = {**medium.tune_defaults, "steps": 4, "lr": 3e-2, "seed": 5}
    states = []
    for run in range(2):
        torch.rand(run + 1)  # whatever ran before in the process must not matter
        task = medium.tune_task(medium.load(str(tiny_llama), "cpu"), examples, settings, None)
        run_tune(task, settings, tmp_path / f"job{run}")
        states.append({k.replace(task.name, ""): v.detach().clone() for k, v in task.adapter_state().items()})
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    other = medium.tune_task(medium.load(str(tiny_llama), "cpu"), examples, {**settings, "seed": 6}, None)
    run_tune(other, {**settings, "seed": 6}, tmp_path / "job-other")
    assert any(not torch.equal(states[0][k], v.detach())
               for k, v in ((k.replace(other.name, ""), v) for k, v in other.adapter_state().items()))
