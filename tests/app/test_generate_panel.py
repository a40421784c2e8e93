"""What a model's tokenizer only logs (a prompt cut at its token limit) reaches the page."""
from __future__ import annotations

import logging
import time

from studio.app.generate_panel import truncation_notes


def test_a_cut_prompt_is_noticed_and_other_warnings_are_not():
    logger = logging.getLogger("diffusers.pipelines.fake_pipeline")
    with truncation_notes() as notes:
        logger.warning("The following part of your input was truncated because CLIP can only handle sequences "
                       "up to 16 tokens: ['strong contrast at dusk']")
        logging.getLogger("transformers.generation").warning("Setting pad_token_id to eos_token_id")
    assert notes == ["strong contrast at dusk"]
    logger.warning("The following part of your input was truncated: ['after the block']")
    assert notes == ["strong contrast at dusk"]  # only while generating


def test_a_cut_prompt_is_noticed_where_serve_silences_library_warnings():
    """``studio serve`` sets the libraries to errors only (studio.quiet): the cut must still be seen, not printed."""
    import io

    from studio.quiet import quiet_libraries

    quiet_libraries()
    library = logging.getLogger("diffusers")
    library.setLevel(logging.ERROR)  # what quiet_diffusers does once diffusers is imported
    printed = io.StringIO()
    own = logging.StreamHandler(printed)
    library.addHandler(own)
    try:
        with truncation_notes() as notes:
            logging.getLogger("diffusers.pipelines.x").warning("The following part of your input was truncated "
                                                              "because CLIP can only handle sequences up to 77 "
                                                              "tokens: ['iff , bold saturated primary colours']")
        assert notes == ["iff , bold saturated primary colours"] and printed.getvalue() == ""
        assert library.level == logging.ERROR and not own.filters  # put back as it was
    finally:
        library.removeHandler(own)
        library.setLevel(logging.NOTSET)


def test_the_cut_is_shown_once_in_the_prompts_own_words():
    from studio.app.generate_panel import cut_warning

    prompt = "a lighthouse on a cliff, drawn stiff, bold saturated primary colours"
    warning = cut_warning(prompt, ["iff , bold saturated primary colours"] * 4)
    assert warning.count("⚠") == 1 and "“…stiff, bold saturated primary colours”" in warning
    assert cut_warning(prompt, []) == ""


def _handler(blocks, name):
    """The function a tab wired under ``name`` (its event's handler), to call as the page would."""
    return next(f.fn for f in blocks.fns.values() if getattr(f.fn, "__name__", "") == name)


def test_a_prompt_longer_than_the_model_reads_is_said_before_generate(workspace, fake):
    """A 433-token prompt against 256 was only an error after Generate: the page says it as the prompt is typed."""
    import gradio as gr

    from fake_medium import PROMPT_WORDS
    from studio.app.generate_panel import length_warning
    from studio.app.tab import build_tab
    from studio.engine import Studio

    studio = Studio(workspace)
    long_prompt = " ".join(["a bright red colour"] * 5)  # 20 words against 12
    found = studio.prompt_length("fake", long_prompt)
    assert (found.used, found.limit, found.unit, found.over) == (20, PROMPT_WORDS, "words", True)
    assert not studio.prompt_length("fake", "a bright red").over
    with gr.Blocks() as blocks:
        ctx = build_tab(studio, "fake")
    check = _handler(blocks, "check_prompt")
    said = check({ctx["prompt"]: long_prompt, ctx["version"]: "base"})[ctx["prompt_warning"]]
    assert said == length_warning(found) and said.count("⚠") == 1
    assert "20 words" in said and "at most 12" in said and "by at least 8 words" in said
    assert check({ctx["prompt"]: "a bright red", ctx["version"]: "base"})[ctx["prompt_warning"]] == ""
    # wired to typing, leaving the field and picking a version, not to Generate
    triggers = {(t[0], t[1]) for f in blocks.fns.values() if getattr(f.fn, "__name__", "") == "check_prompt"
                for t in f.targets}
    assert {(ctx["prompt"]._id, "input"), (ctx["prompt"]._id, "blur"), (ctx["version"]._id, "input")} <= triggers


def test_a_model_without_a_tokenizer_at_hand_says_nothing_while_typing(workspace, fake, tmp_path):
    """Counting loads a tokenizer; a model folder without one (or a hub id not in the cache) is Generate's to
    explain, never an error toast while typing."""
    from studio.engine import Studio

    studio = Studio(workspace)
    for model in (str(tmp_path / "no-such-folder"), str(tmp_path), "someone/not-in-the-cache"):
        assert studio.prompt_length("text", "a haiku", model=model) is None
        assert studio.prompt_length("image", "a red circle", model=model) is None


def test_two_generates_from_a_tab_run_side_by_side_and_share_one_model_call(workspace, fake, monkeypatch):
    """Gradio lets a tab's generates run at once (their own concurrency group, not the model's one-at-a-time one),
    so two with the same prompt and settings, asked while the model is busy, are made by one model call."""
    import threading

    import gradio as gr

    import fake_medium
    from studio.app.generate_panel import GENERATE_AT_ONCE
    from studio.app.tab import build_tab
    from studio.engine import Studio

    plain = fake_medium.FakeMedium.generate
    calls: list[list[int]] = []

    def counted(self, handle, prompt, seeds, params, adapter=None, strength=1.0):
        calls.append(list(seeds))
        return plain(self, handle, prompt, seeds, params, adapter, strength)

    monkeypatch.setattr(fake_medium.FakeMedium, "generate", counted)
    studio = Studio(workspace)
    with gr.Blocks() as blocks:
        ctx = build_tab(studio, "fake")
    wired = {getattr(f.fn, "__name__", ""): f for f in blocks.fns.values()}
    assert wired["generate"].concurrency_id == "generate-fake" and wired["generate"].concurrency_limit == \
        GENERATE_AT_ONCE > 1
    assert wired["rescore"].concurrency_id == "model-fake"  # scoring, compare, export: still one at a time
    generate = wired["generate"].fn
    values = {c: c.value for c in wired["generate"].inputs}  # what a fresh page sends
    shown: dict[int, list[str]] = {}

    def tab(seed: int) -> None:
        out = generate({**values, ctx["prompt"]: "a colour", ctx["n"]: 4, ctx["seed"]: seed})
        shown[seed] = out[ctx["shown"]]

    threads = [threading.Thread(target=tab, args=(seed,)) for seed in (0, 100)]
    with studio._model_lock:  # another generate holds the model while both tabs ask
        for t in threads:
            t.start()
        end = time.monotonic() + 20
        while sum(len(g.requests) for g in studio._joiner._waiting) < 2 and time.monotonic() < end:
            time.sleep(0.01)
    for t in threads:
        t.join(60)
    assert len(calls) == 1 and sorted(calls[0]) == [0, 1, 2, 3, 100, 101, 102, 103]  # one after the other: two
    for seed in (0, 100):
        assert [studio.store.candidate(cid).seed for cid in shown[seed]] == list(range(seed, seed + 4))


def test_scoring_again_with_the_top_share_moves_the_slider_to_the_new_cut(workspace, fake):
    """The Scorers accordion's button under "top share of the batch" (the page's default): new scores, a new cut,
    and the threshold slider moved to it."""
    import gradio as gr

    from studio.app.tab import build_tab
    from studio.engine import Studio

    studio = Studio(workspace)
    with gr.Blocks() as blocks:
        ctx = build_tab(studio, "fake")
    wired = {getattr(f.fn, "__name__", ""): f for f in blocks.fns.values()}
    shown = [c.id for c in studio.generate("fake", "a colour", n=8)]
    values = {c: c.value for c in wired["rescore"].inputs}  # what a fresh page sends: the top quarter
    out = wired["rescore"].fn({**values, ctx["shown"]: shown, ctx["weight.bright"]: 0.0, ctx["weight.colour"]: 1.0})
    scores = sorted((c.scores["score"] for c in studio.store.candidates("fake", ids=shown)), reverse=True)
    assert set(scores) <= {0.0, 1.0}  # the fake's colour scorer: 1 for red
    assert out[ctx["threshold"]] == scores[1]
