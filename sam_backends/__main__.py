"""Command line: ``python -m sam_backends list`` and ``python -m sam_backends download ID...``.

``download --force`` replaces a file that is under the official name but is not the official
file (damaged, or someone else's weights); ``list`` shows "custom" for a model whose env
``SAM_CHECKPOINT_<MODEL ID>`` names the user's own checkpoint.

Errors print one line on stderr (no traceback) and exit non-zero: 2 for a usage error such as an
unknown model id, 1 when a download fails, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from .errors import SamBackendError, UnknownModelError
from .factory import ModelInfo, list_models
from .registry import get_spec, model_ids
from .weights import checkpoints

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("Interrupted; nothing was left half-written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UnknownModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SamBackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sam_backends",
        description="List the Segment Anything models and download their checkpoints.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    folder_help = (f"checkpoints folder (default: env {checkpoints.CHECKPOINT_DIR_ENV}, else "
                   f"{checkpoints.DEFAULT_CHECKPOINT_DIR})")

    listing = commands.add_parser("list", help="show every model and whether its weights are here")
    listing.add_argument("--checkpoint-dir", type=Path, help=folder_help)
    listing.set_defaults(run=_run_list)

    download = commands.add_parser("download", help="fetch checkpoints from the official URLs")
    download.add_argument("model_ids", nargs="+", metavar="ID",
                          help=f"model id(s): {', '.join(model_ids())}")
    download.add_argument("--checkpoint-dir", type=Path, help=folder_help)
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    download.add_argument("--force", action="store_true",
                          help="download again even when a file is there, replacing it (for a "
                               "damaged file, or another file saved under the official name)")
    download.set_defaults(run=_run_download)
    return parser


def _run_list(args: argparse.Namespace) -> int:
    rows = list_models(args.checkpoint_dir)
    print(f"Checkpoints folder: {checkpoints.checkpoint_dir(args.checkpoint_dir)}")
    print(format_table(rows))
    for row in rows:
        if row.custom:
            print(f"{row.model_id}: custom checkpoint {row.checkpoint_path} (env "
                  f"{checkpoints.checkpoint_env_var(row.model_id)}), not hash-checked")
    return 0


def format_table(rows: Sequence[ModelInfo]) -> str:
    """The model catalogue as a plain-text table."""
    header = ("ID", "NAME", "FAMILY", "PARAMS", "CHECKPOINT", "SIZE", "CAPABILITIES")
    lines = [header]
    for row in rows:
        if row.checkpoint_path is None:  # neither a file nor a model folder to download
            status = "not needed"
        elif row.custom:
            status = "custom" if row.present else "custom (missing)"
        else:
            status = "present" if row.present else "absent"
        lines.append((
            row.model_id,
            row.display_name,
            row.family,
            f"{row.num_params / 1e6:.1f}M" if row.num_params else "-",
            status,
            _human_size(row.size_bytes),
            ", ".join(row.capabilities.as_list()),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
        for line in lines
    )


def _human_size(size: int | None) -> str:
    if not size:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return "-"  # unreachable


def _run_download(args: argparse.Namespace) -> int:
    specs = [get_spec(model_id) for model_id in dict.fromkeys(args.model_ids)]  # all ids first
    failed = 0
    for spec in specs:
        path = checkpoints.checkpoint_path(spec, args.checkpoint_dir)
        if path is None:
            print(f"{spec.model_id}: needs no checkpoint.")
            continue
        was_present = not args.force and checkpoints.is_complete(spec, args.checkpoint_dir)
        try:
            path = checkpoints.download(spec, args.checkpoint_dir, progress=not args.quiet,
                                        force=args.force)
        except SamBackendError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        verb = "already present and verified" if was_present else "downloaded and verified"
        print(f"{spec.model_id}: {verb}: {path}")
    return EXIT_FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main())
