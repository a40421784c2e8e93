"""The model library: what each medium can load, from four places, and ``pull`` for the starters.

- the built-in model of each medium (package data);
- the Hugging Face cache (huggingface_hub's ``scan_cache_dir``): what ``studio models pull`` fetched,
  or any other tool did;
- folders the artist adds once (AUTOMATIC1111's ``models/Stable-diffusion`` and ``models/Lora``,
  ComfyUI's ``models/checkpoints`` and ``models/loras``, any folder), kept in the workspace's settings
  (``model_folders``) as ComfyUI keeps its ``extra_model_paths.yaml``: each ``.safetensors`` checkpoint
  or LoRA in them, and each model folder;
- recommended starters per medium (``STARTERS``): size, memory need, license, gated or not.

``pull`` downloads a hub repo's safetensors weights and the small files beside them (configs,
tokenizers), never pickle weights, into the Hugging Face cache's own layout; it refuses a repo
without safetensors in one sentence.  A partial file is kept, so an interrupted pull (Ctrl-C, a lost
connection, a killed process) continues where it stopped when run again.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import StudioError, one_line

FOLDERS_SETTING = "model_folders"
KEEP_SUFFIXES = (".safetensors", ".json", ".txt", ".model", ".jinja", ".tiktoken")  # weights, configs, tokenizers
SKIP_NAMES = ("non_ema", "ema_only", ".onnx", "openvino", "flax_model", "tf_model")


@dataclasses.dataclass(frozen=True)
class Starter:
    """A recommended model: figures are the hub's sizes and this file's estimates (GPU figures unmeasured)."""

    id: str
    medium: str  # image, text, music, or scorer (a model a scorer uses)
    size_gb: float  # about, for the files ``pull`` fetches
    memory_gb: float  # about, to generate at the model's native size in bf16/fp16 (not measured here)
    license: str
    gated: bool  # the hub asks you to accept its terms (log in with ``hf auth login`` first)
    note: str = ""


STARTERS = (
    Starter("stabilityai/sd-turbo", "image", 5.2, 4, "Stability AI Community", False,
            "SD 2.1 distilled: 1-4 steps at 512 px, guidance 0"),
    Starter("stabilityai/sdxl-turbo", "image", 7.0, 8, "Stability AI Community", False,
            "SDXL distilled: 1-4 steps at 512 px, guidance 0"),
    Starter("stable-diffusion-v1-5/stable-diffusion-v1-5", "image", 5.2, 4, "CreativeML OpenRAIL-M", False,
            "512 px; the base most community LoRAs are made for"),
    Starter("stabilityai/stable-diffusion-xl-base-1.0", "image", 7.0, 10, "CreativeML OpenRAIL++-M", False,
            "1024 px"),
    Starter("stabilityai/stable-diffusion-3.5-medium", "image", 16.0, 12, "Stability AI Community", True,
            "MM-DiT, CLIP-L, CLIP-G and T5-XXL"),
    Starter("black-forest-labs/FLUX.1-schnell", "image", 34.0, 24, "Apache-2.0", False,
            "1-4 steps; fits 16 GB with CPU offload"),
    Starter("Qwen/Qwen2.5-0.5B-Instruct", "text", 1.0, 2, "Apache-2.0", False),
    Starter("Qwen/Qwen2.5-1.5B-Instruct", "text", 3.1, 4, "Apache-2.0", False),
    Starter("HuggingFaceTB/SmolLM2-360M-Instruct", "text", 0.7, 1, "Apache-2.0", False),
    Starter("HuggingFaceTB/SmolLM2-1.7B-Instruct", "text", 3.4, 4, "Apache-2.0", False),
    Starter("meta-llama/Llama-3.2-1B-Instruct", "text", 2.5, 3, "Llama 3.2 Community", True),
    Starter("facebook/musicgen-small", "music", 2.4, 3, "CC-BY-NC-4.0", False, "text to audio, 32 kHz mono"),
    Starter("facebook/musicgen-medium", "music", 8.0, 8, "CC-BY-NC-4.0", False, "text to audio, 32 kHz mono"),
    Starter("facebook/musicgen-melody", "music", 6.2, 8, "CC-BY-NC-4.0", False,
            "melody-conditioned MusicGen: listed, but the music medium loads plain MusicGen only"),
    Starter("openai/clip-vit-base-patch32", "scorer", 0.6, 1, "MIT", False,
            "for the image 'clip' prompt-agreement scorer"),
)


@dataclasses.dataclass
class Entry:
    """One model the library knows: ``id`` is what ``--model`` (or ``--lora``) takes."""

    id: str
    medium: str  # image, text, music, scorer, or "" when the files do not say
    kind: str  # built-in, cache, folder, starter
    format: str  # pipeline, checkpoint, lora, model, or "" for a starter not pulled yet
    path: str = ""
    size_bytes: int = 0
    installed: bool = True
    starter: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- what a folder or file holds ------------------------------------------------------------------

def _config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def classify_folder(folder: Path) -> tuple[str, str] | None:
    """(medium, format) for a model folder, None when it is not one."""
    if (folder / "model_index.json").is_file():
        return "image", "pipeline"
    if (folder / "adapter_config.json").is_file():
        return "", "lora"
    if not (folder / "config.json").is_file() or not any(folder.glob("*.safetensors")):
        return None
    config = _config(folder)
    kind = config.get("model_type", "")
    if kind.startswith("musicgen"):
        return "music", "model"
    if kind == "clip" or "CLIPModel" in (config.get("architectures") or []):
        return "scorer", "model"
    if (folder / "studio_music.json").is_file():
        return "music", "model"
    if any("CausalLM" in a or "LMHead" in a for a in config.get("architectures") or []):
        return "text", "model"
    return None


def classify_file(path: Path) -> tuple[str, str] | None:
    """(medium, format) for a ``.safetensors`` file: an image checkpoint or a LoRA; None otherwise."""
    from .media.image.single_file import detect, read_header

    try:
        shapes = read_header(path)
    except Exception:  # a damaged or foreign file is simply not listed
        return None
    if any(k.startswith(("lora_", "unet.", "transformer.", "text_encoder.")) and "lora" in k for k in shapes):
        return "image", "lora"
    try:
        detect(shapes, path.name)
    except StudioError:
        return None
    return "image", "checkpoint"


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def scan_folder(root: Path, depth: int = 3) -> list[Entry]:
    """Every checkpoint, LoRA and model folder under ``root`` (a few levels deep)."""
    found: list[Entry] = []

    def visit(folder: Path, level: int) -> None:
        kind = classify_folder(folder)
        if kind is not None:
            found.append(Entry(id=str(folder), medium=kind[0], kind="folder", format=kind[1], path=str(folder),
                               size_bytes=_size(folder)))
            return
        try:
            children = sorted(folder.iterdir())
        except OSError:
            return
        for child in children:
            if child.is_file() and child.suffix == ".safetensors":
                kind = classify_file(child)
                if kind is not None:
                    found.append(Entry(id=str(child), medium=kind[0], kind="folder", format=kind[1],
                                       path=str(child), size_bytes=child.stat().st_size))
            elif child.is_dir() and level < depth and not child.name.startswith("."):
                visit(child, level + 1)

    visit(root, 0)
    return found


def scan_cache() -> list[Entry]:
    """The models in the Hugging Face cache, each at its newest snapshot."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir()
    except CacheNotFound:
        return []
    out = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        newest = max(repo.revisions, key=lambda r: r.last_modified)
        kind = classify_folder(Path(newest.snapshot_path))
        out.append(Entry(id=repo.repo_id, medium=kind[0] if kind else "", kind="cache",
                         format=kind[1] if kind else "", path=str(newest.snapshot_path),
                         size_bytes=repo.size_on_disk))
    return out


# -- the library of one workspace ---------------------------------------------------------------

class Library:
    """The models of every medium for one workspace (its added folders live in the store's settings)."""

    def __init__(self, store, media_names: Iterable[str] = ()):
        self.store = store
        self.media_names = list(media_names)

    def folders(self) -> list[str]:
        return list(self.store.get_setting(FOLDERS_SETTING) or [])

    def add_folder(self, folder: str) -> list[Entry]:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise StudioError(f"The folder '{folder}' does not exist (or is a file).")
        resolved = str(path.resolve())
        folders = self.folders()
        if resolved not in folders:
            self.store.set_setting(FOLDERS_SETTING, [*folders, resolved])
        return scan_folder(Path(resolved))

    def remove(self, what: str) -> dict[str, Any]:
        """Forget an added folder (its files stay), or delete a pulled model from the Hugging Face cache."""
        folders = self.folders()
        path = Path(what).expanduser()
        resolved = str(path.resolve()) if path.exists() or what.startswith(("/", ".", "~")) else what
        if resolved in folders:
            self.store.set_setting(FOLDERS_SETTING, [f for f in folders if f != resolved])
            return {"removed": resolved, "kind": "folder", "freed_bytes": 0}
        for entry in scan_cache():
            if entry.id == what:
                from huggingface_hub import scan_cache_dir

                info = scan_cache_dir()
                hashes = [r.commit_hash for repo in info.repos if repo.repo_id == what for r in repo.revisions]
                strategy = info.delete_revisions(*hashes)
                strategy.execute()
                return {"removed": what, "kind": "cache", "freed_bytes": strategy.expected_freed_size}
        raise StudioError(f"'{what}' is neither an added folder nor a model in the Hugging Face cache; "
                          "see studio models list.")

    def entries(self, medium: str | None = None) -> list[Entry]:
        from . import media

        out: list[Entry] = []
        names = self.media_names or media.available()
        for name in names:
            out.append(Entry(id=media.get(name).default_model(), medium=name, kind="built-in", format="model",
                             path=media.get(name).default_model()))
        cached = scan_cache()
        out += cached
        for folder in self.folders():
            if Path(folder).is_dir():
                out += scan_folder(Path(folder))
        have = {e.id for e in cached}
        for s in STARTERS:
            out.append(Entry(id=s.id, medium=s.medium, kind="starter", format="", installed=s.id in have,
                             size_bytes=int(s.size_gb * 1e9), starter=dataclasses.asdict(s)))
        if medium is not None:
            out = [e for e in out if e.medium == medium]
        return out

    def choices(self, medium: str, format: str | None = None) -> list[str]:
        """Loadable ids for a medium (``format="lora"`` for its LoRAs), installed ones only, no repeats."""
        picked = [e.id for e in self.entries(medium) if e.installed and e.medium in (medium, "")
                  and (e.format == "lora") == (format == "lora") and e.format]
        return list(dict.fromkeys(picked))


# -- pull -----------------------------------------------------------------------------------------

def pick_files(files: dict[str, int]) -> list[str]:
    """The files of a repo ``pull`` fetches: safetensors weights and the small files a loader reads.

    In a diffusers pipeline repo, its components' folders only (the single-file copy at the top is
    the same weights again), and a component's ``*.fp16.safetensors`` only where it has no full one.
    """
    names = [n for n in files if n.endswith(KEEP_SUFFIXES) and not any(s in n for s in SKIP_NAMES)]
    if "model_index.json" in files:
        names = [n for n in names if "/" in n or not n.endswith(".safetensors")]
        full = {n.rsplit("/", 1)[0] for n in names if n.endswith(".safetensors") and ".fp16." not in n}
        names = [n for n in names if ".fp16." not in n or n.rsplit("/", 1)[0] not in full]
    return sorted(names)


PARTIAL = ".studio-partial"  # a blob being pulled; kept when a pull stops, continued by the next one
CHUNK = 1 << 20


def _fetch(url: str, headers: dict[str, str], partial: Path, size: int, report: Callable[[int], None]) -> None:
    """Download ``url`` into ``partial``, continuing from the bytes it already holds (an HTTP range)."""
    from huggingface_hub.utils import get_session

    have = partial.stat().st_size if partial.exists() else 0
    if have > size:
        partial.unlink()
        have = 0
    if have == size:
        return
    ask = {**headers, **({"Range": f"bytes={have}-"} if have else {})}
    with get_session().stream("GET", url, headers=ask, follow_redirects=True) as response:
        response.raise_for_status()
        if have and response.status_code != 206:  # the server sent the whole file: start again
            have = 0
        with open(partial, "ab" if have else "wb") as fh:
            for chunk in response.iter_bytes(CHUNK):
                fh.write(chunk)
                have += len(chunk)
                report(len(chunk))
    if have != size:
        raise OSError(f"the download of {url.rsplit('/', 1)[-1]} ended at {have} of {size} bytes")


def pull(repo: str, on_progress: Callable[[int, int], None] | None = None, token: str | None = None) -> dict[str, Any]:
    """Download ``repo``'s safetensors weights and configs into the Hugging Face cache; resumes a partial pull.

    Files land in the cache's own layout (``blobs/ETAG``, ``snapshots/COMMIT/PATH`` linking to it,
    ``refs/main``), so every Hugging Face tool finds them.  Each file is fetched into
    ``blobs/ETAG.studio-partial`` and continued from its length by the next pull: the hub client
    (2.x) writes a process-unique temporary file instead, so a killed download would start over.
    """
    from huggingface_hub import HfApi, constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (GatedRepoError, HFValidationError, RepositoryNotFoundError,
                                        RevisionNotFoundError)
    from huggingface_hub.utils import build_hf_headers

    if repo.count("/") != 1 or "\x00" in repo or not all(repo.split("/")):
        raise StudioError(f"'{repo}' is not a hub id (owner/name).")
    if constants.HF_HUB_OFFLINE:
        raise StudioError("The Hugging Face client is offline (HF_HUB_OFFLINE is set); unset it to pull models.")
    try:
        info = HfApi(token=token).model_info(repo, files_metadata=True)
    except GatedRepoError:
        raise StudioError(f"{repo} is gated: accept its terms on its hub page, log in (hf auth login), "
                          "then pull again.") from None
    except (RepositoryNotFoundError, RevisionNotFoundError, HFValidationError):
        raise StudioError(f"There is no model '{repo}' on the hub (or it is private).") from None
    except Exception as exc:  # no connection, the hub is down
        raise StudioError(f"Could not reach the hub to pull {repo}: {one_line(exc)}.") from None
    files = {s.rfilename: int(s.size or 0) for s in info.siblings or []}
    if not any(n.endswith(".safetensors") for n in files):
        raise StudioError(f"{repo} has no safetensors weights (only pickle files, which studio never loads); "
                          "pick another repo or convert it first.")
    wanted = pick_files(files)
    total = sum(files[n] for n in wanted)
    root = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
    blobs, snapshot = root / "blobs", root / "snapshots" / str(info.sha)
    blobs.mkdir(parents=True, exist_ok=True)
    headers = build_hf_headers(token=token)
    done = 0

    def report(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress(min(done, total), total)

    try:
        for name in wanted:
            url = hf_hub_url(repo, name, revision=info.sha)
            meta = get_hf_file_metadata(url, token=token)
            etag, size = meta.etag, int(meta.size if meta.size is not None else files[name])
            blob = blobs / etag
            if not blob.exists():
                partial = blobs / (etag + PARTIAL)
                report(partial.stat().st_size if partial.exists() else 0)
                _fetch(meta.location or url, headers, partial, size, report)
                os.replace(partial, blob)
            else:
                report(size)
            link = snapshot / name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                target = os.path.relpath(blob, link.parent)
                try:
                    link.symlink_to(target)
                except OSError:  # no symlinks here (some Windows setups): a copy, as the hub client does
                    import shutil

                    shutil.copyfile(blob, link)
    except StudioError:
        raise
    except Exception as exc:  # the connection dropped, the disk filled up, ...
        raise StudioError(f"The pull of {repo} stopped ({one_line(exc)}); run it again to continue "
                          "where it stopped.") from None
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(str(info.sha), encoding="utf-8")
    if on_progress is not None:
        on_progress(total, total)
    return {"repo": repo, "path": str(snapshot), "files": wanted, "bytes": total, "revision": info.sha}


def progress_line(done: int, total: int, started: float) -> str:
    rate = done / max(1e-6, time.monotonic() - started)
    left = (total - done) / rate if rate > 0 else 0
    return (f"pulled {done / 1e6:,.1f} of {total / 1e6:,.1f} MB ({done / max(1, total):.0%})"
            + (f", about {left:.0f} s left" if 0 < done < total else ""))

