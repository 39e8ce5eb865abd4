"""``samwb export`` and ``samwb import``: a project's labels in and out without a browser.

    samwb export PROJECT --format coco|yolo|labelme|voc|cutouts --out DIR [--polygons]
                         [--status done]
    samwb import PROJECT --format coco|yolo|labelme FILE_OR_FOLDER
    samwb label PROJECT --text "car, person" --model sam2.1-tiny ...  (workbench.labeling.cli)

Both open the project like the app does (so they refuse, with the app's message, a project
another samwb has open) and print what they did. Exit status 0 on success, 2 on a refusal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from workbench.projects.model import STATUSES, ProjectError

FORMATS = ("coco", "yolo", "labelme", "voc", "cutouts")
IMPORT_FORMATS = ("coco", "yolo", "labelme")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="samwb", description="Work on a samwb project.")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write the project's labels in a format")
    export.add_argument("project", type=Path, help="the project folder")
    export.add_argument("--format", required=True, choices=FORMATS)
    export.add_argument("--out", required=True, type=Path, help="folder to write into")
    export.add_argument("--polygons", action="store_true",
                        help="COCO: polygons instead of RLE (see FORMATS.md for what is lost)")
    export.add_argument("--status", choices=STATUSES, default=None,
                        help="only images with this status (default: every image)")
    imp = commands.add_parser("import", help="add labels from files as objects to review")
    imp.add_argument("project", type=Path, help="the project folder")
    imp.add_argument("--format", required=True, choices=IMPORT_FORMATS)
    imp.add_argument("source", type=Path, help="the label file or folder")
    from workbench.labeling.cli import add_parser as add_label

    add_label(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "label":
        from workbench.labeling.cli import run

        return run(args)
    from workbench.projects.store import ProjectStore
    from workbench.projects.transfer import export_store, import_into

    try:
        with ProjectStore.open(args.project) as store:
            if args.command == "export":
                done = export_store(store, args.format, args.out, polygons=args.polygons,
                                    status=args.status)
                print(f"Exported {_count(done.objects, 'object')} on "
                      f"{_count(done.images, 'image')} as {args.format} into {done.folder}")
                for problem in done.problems:
                    print(f"  problem: {problem}")
            else:
                result, report = import_into(store, args.format, args.source)
                added = getattr(report, "objects", None) or getattr(report, "added", 0)
                print(f"Imported {_count(added, 'object')} into {store.name} (status: in review)")
                for problem in list(getattr(result, "problems", ())) + list(
                        getattr(report, "problems", ())):
                    print(f"  skipped: {problem}")
    except ProjectError as exc:
        print(f"samwb: {exc}", file=sys.stderr)
        return 2
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
