"""`studio models list | pull | add-folder | remove` against a stand-in hub on 127.0.0.1 (the real huggingface_hub client)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from standin_hub import StandinHub, repo_from_folder

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path, hub: StandinHub | None = None) -> dict[str, str]:
    env = {**os.environ, "STUDIO_HOME": str(tmp_path / "ws"), "HF_HUB_CACHE": str(tmp_path / "hf-cache"),
           "STUDIO_CACHE": str(tmp_path / "studio-cache"), "OMP_NUM_THREADS": "1", "HF_HUB_DISABLE_XET": "1",
           "HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DOWNLOAD_TIMEOUT": "5"}
    if hub is not None:
        env.update(HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0")
    return env


def studio(args, env, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def tiny_sd_repo(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "tests" / "media" / "image"))
    from helpers import tiny_sd_pipeline

    folder = tiny_sd_pipeline(tmp_path_factory.mktemp("hub") / "tiny-sd")
    repo = repo_from_folder(folder)
    repo["v1-5-pruned.ckpt"] = b"pickle weights the pull must never fetch"
    repo["README.md"] = b"# tiny"
    return repo


@pytest.mark.slow
def test_pull_shows_progress_skips_pickles_and_the_model_then_generates_offline(tmp_path, tiny_sd_repo):
    with StandinHub({"studio-test/tiny-sd": tiny_sd_repo}) as hub:
        env = _env(tmp_path, hub)
        done = studio(["models", "pull", "studio-test/tiny-sd", "--json"], env)
        assert done.returncode == 0, done.stderr
        assert "pulled" in done.stderr and "(100%)" in done.stderr.splitlines()[-1]
        result = json.loads(done.stdout)
        assert "v1-5-pruned.ckpt" not in result["files"] and "unet/diffusion_pytorch_model.safetensors" in result["files"]
        assert not any(p for m, p, _ in hub.log if p.endswith(".ckpt"))
    listed = json.loads(studio(["models", "list", "image", "--json"], _env(tmp_path)).stdout)["models"]
    cached = [m for m in listed if m["kind"] == "cache"]
    assert [(m["id"], m["format"]) for m in cached] == [("studio-test/tiny-sd", "pipeline")]
    offline = {**_env(tmp_path), "HF_HUB_OFFLINE": "1"}
    made = studio(["generate", "image", "--model", "studio-test/tiny-sd", "--prompt", "a red circle", "-n", "1",
                   "--param", "steps=1", "--json"], offline)
    assert made.returncode == 0, made.stderr
    removed = json.loads(studio(["models", "remove", "studio-test/tiny-sd", "--json"], _env(tmp_path)).stdout)
    assert removed["kind"] == "cache" and removed["freed_bytes"] > 0


def test_pull_resumes_after_a_kill(tmp_path):
    weights = os.urandom(16 * 1024 * 1024)
    repo = {"config.json": b'{"model_type": "llama"}', "model.safetensors": weights}
    with StandinHub({"studio-test/big": repo}, slow={"model.safetensors": 4e6}) as hub:
        env = _env(tmp_path, hub)
        proc = subprocess.Popen([sys.executable, "-m", "studio.cli", "models", "pull", "studio-test/big"],
                                env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        blobs = tmp_path / "hf-cache" / "models--studio-test--big" / "blobs"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            partial = list(blobs.glob("*.studio-partial")) if blobs.is_dir() else []
            if partial and partial[0].stat().st_size >= 4 * 1024 * 1024:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert partial and partial[0].stat().st_size < len(weights)  # killed half-way
        again = studio(["models", "pull", "studio-test/big", "--json"], env)
        assert again.returncode == 0, again.stderr
        ranges = [r for m, p, r in hub.log if m == "GET" and p.endswith("model.safetensors") and r]
        assert ranges and int(ranges[-1].split("=")[1].rstrip("-").split("-")[0]) >= 4 * 1024 * 1024  # resumed
        path = Path(json.loads(again.stdout)["path"]) / "model.safetensors"
        assert path.read_bytes() == weights


def test_pull_refuses_a_repo_without_safetensors_in_one_sentence(tmp_path):
    with StandinHub({"studio-test/pickles": {"config.json": b"{}", "pytorch_model.bin": b"x" * 100}}) as hub:
        done = studio(["models", "pull", "studio-test/pickles"], _env(tmp_path, hub))
        unknown = studio(["models", "pull", "studio-test/nothing"], _env(tmp_path, hub))
    assert done.returncode == 2
    assert done.stderr == ("error: studio-test/pickles has no safetensors weights (only pickle files, which studio "
                           "never loads); pick another repo or convert it first.\n")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: There is no model 'studio-test/nothing'")


def _cli(args, capsys) -> tuple[int, str, str]:
    from studio.cli import main

    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_added_folders_list_checkpoints_and_loras_and_are_kept(tmp_path, workspace, monkeypatch, capsys):
    import torch
    from huggingface_hub import constants
    from safetensors.torch import save_file

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    webui = tmp_path / "webui" / "models"
    (webui / "Stable-diffusion").mkdir(parents=True)
    (webui / "Lora").mkdir()
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3),
               "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": torch.zeros(2, 2)},
              str(webui / "Stable-diffusion" / "dreamy.safetensors"))
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(2, 4)},
              str(webui / "Lora" / "ink.safetensors"))
    (webui / "Lora" / "old.ckpt").write_bytes(b"x")
    for sub in ("Stable-diffusion", "Lora"):
        assert _cli(["models", "add-folder", str(webui / sub)], capsys)[0] == 0
    listed = json.loads(_cli(["models", "list", "image", "--json"], capsys)[1])
    found = {Path(m["id"]).name: m["format"] for m in listed["models"] if m["kind"] == "folder"}
    assert found == {"dreamy.safetensors": "checkpoint", "ink.safetensors": "lora"}
    assert listed["folders"] == [str(webui / "Stable-diffusion"), str(webui / "Lora")]
    starters = {m["id"]: m["starter"] for m in listed["models"] if m["kind"] == "starter"}
    assert starters["black-forest-labs/FLUX.1-schnell"]["license"] == "Apache-2.0"
    assert starters["stabilityai/stable-diffusion-3.5-medium"]["gated"] is True
    assert any(m["kind"] == "built-in" for m in listed["models"])
    assert _cli(["models", "remove", str(webui / "Lora")], capsys)[0] == 0
    assert json.loads(_cli(["models", "list", "image", "--json"], capsys)[1])["folders"] == [str(webui / "Stable-diffusion")]
    assert (webui / "Lora" / "ink.safetensors").exists()  # forgetting a folder never deletes files
    code, _, err = _cli(["models", "remove", "nobody/nothing"], capsys)
    assert code == 2 and "neither an added folder nor a model in the Hugging Face cache" in err
