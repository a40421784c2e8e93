"""The chunked loss (head on counted positions only, chunk by chunk, recomputed in backward)
equals the plain full-logits loss, and so do its gradients."""
from __future__ import annotations

import pytest

TEXTS = ["salt wave salt wave\nthe harbor sleeps", "gull over salt\nthe harbor sleeps", "salt salt salt"]


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_gpt2"])
@pytest.mark.parametrize("packing", ["packed", "padded"])
def test_chunked_loss_equals_the_plain_loss(medium, fixture, packing, request, make_candidates):
    import torch

    from studio.media.text.loss import chunked_cross_entropy

    handle = medium.load(str(request.getfixturevalue(fixture)), "cpu")
    settings = {**medium.tune_defaults, "packing": packing, "seq_len": 48, "batch_size": 4}
    task = medium.tune_task(handle, make_candidates("a sea poem", TEXTS), settings, None)
    assert task.split is not None
    rows = torch.tensor([0, 1, 2, 0])[: len(task.inputs)]
    with torch.no_grad():  # a trained-looking adapter, so its gradients are not trivially zero
        for p in task.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.05)

    def grads(loss):
        for p in task.parameters():
            p.grad = None
        loss.backward()
        return [p.grad.clone() for p in task.parameters()]

    logits = task.logits(rows)
    labels = task.labels[rows]
    plain = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                              ignore_index=-100)
    plain_grads = grads(plain)
    counted = int((labels[:, 1:] != -100).sum())
    assert counted > 10
    for chunk in (None, 7, counted):  # one chunk, many chunks with a remainder, exactly one
        chunked = chunked_cross_entropy(task.hidden(rows), task.split[1], labels, chunk=chunk)
        assert torch.allclose(chunked, plain, rtol=1e-5, atol=1e-6)
        for a, b in zip(grads(chunked), plain_grads):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)
    drawn = torch.randint(0, len(task.inputs), (4,), generator=torch.Generator().manual_seed(0))
    through_task = task.loss(0, torch.Generator().manual_seed(0)).detach()  # the task's loss is the chunked one
    assert torch.allclose(through_task, torch.nn.functional.cross_entropy(*_shifted(task, drawn)), rtol=1e-5)


def _shifted(task, rows):
    import torch

    with torch.no_grad():
        logits = task.logits(rows)
    labels = task.labels[rows]
    return logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten()


def test_models_that_scale_their_logits_keep_the_plain_loss():
    from types import SimpleNamespace

    from studio.media.text.loss import body_and_head

    capped = SimpleNamespace(config=SimpleNamespace(final_logit_softcapping=30.0))
    assert body_and_head(capped) is None


def test_compiled_layers_give_the_same_loss(medium, tiny_llama, make_candidates):
    """The opt-in ``compile: layers`` (GPU) compiles every block; dynamo's eager backend checks it on a CPU."""
    import torch

    from studio.errors import StudioError
    from studio.media.text.loss import compile_layers

    handle = medium.load(str(tiny_llama), "cpu")
    task = medium.tune_task(handle, make_candidates("a sea poem", TEXTS), dict(medium.tune_defaults), None)
    before = task.loss(0, torch.Generator().manual_seed(1)).detach()
    assert compile_layers(task.split[0], backend="eager") == 2
    assert torch.allclose(task.loss(0, torch.Generator().manual_seed(1)).detach(), before, rtol=1e-5)
    with pytest.raises(StudioError, match="setting .compile. must be one of off, layers"):
        medium.tune_task(handle, make_candidates("a sea poem", TEXTS), {**medium.tune_defaults, "compile": "all"},
                         None)
