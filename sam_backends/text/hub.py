"""Finding a Hugging Face model folder on disk, or fetching it, with messages that say what to do.

Where a folder lives: an explicit path, else ``<checkpoints folder>/<model id>`` (the folder of
``checkpoints.checkpoint_dir()``: env ``SAM_CHECKPOINT_DIR`` or the project's ``checkpoints/``),
e.g. ``checkpoints/sam3/`` holding ``config.json``, the weights and the processor files. A
folder counts as present when it holds ``config.json``.

Downloading (only when asked) goes through ``huggingface_hub.snapshot_download`` into that
folder, with the user's token: env ``HF_TOKEN`` or the one saved by ``hf auth login``. Gated
repositories (facebook/sam3, under the SAM License) need the token of an account that has been
granted access. Every failure becomes a ``DownloadError`` (or ``CheckpointMissingError``) whose
message names the cause and the fix:

* no token for a gated repository: request access, then set ``HF_TOKEN`` or ``hf auth login``;
* ``GatedRepoError`` (HTTP 401/403 with a token): access not granted (yet), or another account;
* ``RepositoryNotFoundError`` / HTTP 401: the token is invalid or the repository is private;
* offline (``SAM_OFFLINE=1``/``HF_HUB_OFFLINE=1``, or ``LocalEntryNotFoundError``: no network):
  copy the folder by hand or go online.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointMissingError, DownloadError
from ..registry import OWLV2_ID, ModelSpec, get_detector, get_spec
from ..weights import checkpoints

CONFIG_FILE = "config.json"
# Only what transformers needs; the repositories also hold other formats (.pt, .bin).
ALLOW_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model")


@dataclass(frozen=True)
class HubModel:
    """A model published as a Hugging Face repository.

    Attributes:
        local_name: the folder name under the checkpoints folder (the model id).
        repo_id: "owner/name" on huggingface.co.
        display_name: shown in messages.
        license: the licence's name, shown where the model is offered.
        gated: the repository asks each user to accept its licence before downloading.
    """

    local_name: str
    repo_id: str
    display_name: str
    license: str
    gated: bool = False

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"


def for_spec(spec: ModelSpec) -> HubModel:
    """The ``HubModel`` of a catalogue entry with ``hf_repo`` (folder name = its model id)."""
    if spec.hf_repo is None:
        raise ValueError(f"{spec.model_id} is not a Hugging Face model folder.")
    return HubModel(spec.model_id, spec.hf_repo, spec.display_name.split(" (")[0],
                    spec.license or "its licence", spec.gated)


# The catalogue's Hugging Face-hosted models (``registry``), as the folders to fetch and check.
SAM3 = for_spec(get_spec("sam3"))
OWLV2 = for_spec(get_detector(OWLV2_ID))


def local_folder(model: HubModel, checkpoint_dir: str | Path | None = None) -> Path:
    """Where ``model``'s folder is (or would be) inside the checkpoints folder."""
    return checkpoints.checkpoint_dir(checkpoint_dir) / model.local_name


def is_present(model: HubModel, checkpoint_dir: str | Path | None = None) -> bool:
    return (local_folder(model, checkpoint_dir) / CONFIG_FILE).is_file()


def resolve_folder(
    model: HubModel,
    folder: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    *,
    download: bool = False,
    token: str | None = None,
) -> Path:
    """The folder to load ``model`` from: ``folder`` if given, else the checkpoints folder's
    ``<local_name>/``, downloaded first when absent and ``download`` is asked.

    Raises:
        CheckpointMissingError: not on disk and ``download`` is False (or ``folder`` lacks
            ``config.json``).
        DownloadError: the download failed; the message says why and what to do.
    """
    if folder is not None:
        path = Path(folder).expanduser()
        if not (path / CONFIG_FILE).is_file():
            raise CheckpointMissingError(
                f"{path} is not a {model.display_name} model folder (no {CONFIG_FILE}). Give the "
                f"folder that holds config.json and the weights, as downloaded from {model.url}."
            )
        return path
    path = local_folder(model, checkpoint_dir)
    if (path / CONFIG_FILE).is_file():
        return path
    if not download:
        raise CheckpointMissingError(
            f"{model.display_name} is not downloaded: {path} has no {CONFIG_FILE}. "
            + _how_to_get(model, path)
        )
    return download_folder(model, path, token=token)


def download_folder(model: HubModel, path: Path, *, token: str | None = None) -> Path:
    """Fetch ``model``'s repository into ``path`` (files already there are kept)."""
    if checkpoints.is_offline():
        raise DownloadError(
            f"Cannot download {model.display_name}: offline mode is on "
            f"({' / '.join(checkpoints.OFFLINE_ENVS)}). Unset it, or copy the model folder from "
            f"{model.url} to {path} yourself."
        )
    import huggingface_hub
    from huggingface_hub import errors as hub_errors

    token = token or huggingface_hub.get_token()
    if model.gated and not token:
        raise DownloadError(
            f"{model.display_name} ({model.repo_id}, {model.license}) is a gated model and no "
            f"Hugging Face token was found. Request access at {model.url} (accept the "
            f"{model.license}), then set HF_TOKEN=<your token> or run `hf auth login`, and "
            "try again."
        )
    try:
        huggingface_hub.snapshot_download(
            model.repo_id, local_dir=str(path), token=token, allow_patterns=list(ALLOW_PATTERNS)
        )
    except hub_errors.GatedRepoError:
        raise DownloadError(
            f"Your Hugging Face account has not been granted access to {model.repo_id} (yet). "
            f"Request access at {model.url} (accept the {model.license}); once the page says "
            "access is granted, try again. If it already says so, HF_TOKEN (or `hf auth login`) "
            "holds another account's token."
        ) from None
    except hub_errors.RepositoryNotFoundError:
        raise DownloadError(
            f"Hugging Face refused {model.repo_id}: the token is invalid or expired (HTTP 401), "
            "or the repository is not visible to this account. Create a new token at "
            "https://huggingface.co/settings/tokens and set HF_TOKEN, or run `hf auth login`."
        ) from None
    except (hub_errors.LocalEntryNotFoundError, hub_errors.OfflineModeIsEnabled):
        raise DownloadError(
            f"Cannot reach huggingface.co to download {model.display_name} (no network, or "
            f"offline mode). Connect and try again, or copy the model folder from {model.url} "
            f"to {path} yourself."
        ) from None
    except hub_errors.HfHubHTTPError as exc:
        raise DownloadError(
            f"Downloading {model.repo_id} failed: {exc}. Try again later; "
            + _how_to_get(model, path)
        ) from None
    except OSError as exc:
        raise DownloadError(
            f"Downloading {model.repo_id} into {path} failed: {exc}. Check the disk space and "
            "permissions of the checkpoints folder."
        ) from None
    if not (path / CONFIG_FILE).is_file():
        raise DownloadError(f"The download of {model.repo_id} into {path} has no {CONFIG_FILE}.")
    return path


def _how_to_get(model: HubModel, path: Path) -> str:
    gated = (
        f"It is gated under the {model.license}: request access at {model.url}, set HF_TOKEN "
        "or run `hf auth login`, then "
        if model.gated else ""
    )
    return (
        f"{gated}download it with download=True (create_backend(..., download=True)), or copy "
        f"the folder from {model.url} to {path}."
    )
