"""The human-readable project file ``DIR/samwb-project.json``: name, classes and settings.

    {"format": "samwb-project", "version": 1, "name": "street scenes",
     "classes": [{"id": 1, "name": "object", "color": "#4e79a7"}],
     "next_class_id": 2, "settings": {}}

Class ids are never reused (``next_class_id`` only grows), so an object's class survives the
removal and re-creation of a class with the same name. The file is written atomically (a temp
file in the same folder, fsynced, then ``os.replace``), so a crash leaves the old or the new
file, never half of one. People may edit it by hand; ``load`` checks it and says what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .files import write_atomic
from .model import MAX_CLASSES, LabelClass, ProjectError, clean_class_name, default_color

FILE_NAME = "samwb-project.json"
FORMAT = "samwb-project"
VERSION = 1


@dataclass(frozen=True)
class ProjectFile:
    """The project file's content."""

    name: str
    classes: tuple[LabelClass, ...] = ()
    next_class_id: int = 1
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "name": self.name,
                "classes": [{"id": c.class_id, "name": c.name, "color": c.color}
                            for c in self.classes],
                "next_class_id": self.next_class_id, "settings": self.settings}


def new_project(name: str) -> ProjectFile:
    """A fresh project: one class, "object"."""
    return ProjectFile(name=name, classes=(LabelClass(1, "object", default_color(0)),),
                       next_class_id=2)


def class_named(project: ProjectFile, name: str) -> LabelClass | None:
    """The class of that name, ignoring case and extra spaces."""
    key = " ".join(str(name).split()).casefold()
    return next((c for c in project.classes if c.name.casefold() == key), None)


def class_with_id(project: ProjectFile, class_id: int) -> LabelClass:
    found = next((c for c in project.classes if c.class_id == class_id), None)
    if found is None:
        raise ProjectError(f"There is no class {class_id} in this project; add it first.")
    return found


def with_new_class(project: ProjectFile, name: str, color: str | None
                   ) -> tuple[ProjectFile, LabelClass]:
    """The project with one more class (a fresh id; the colour follows the id by default)."""
    name = clean_class_name(name)
    if class_named(project, name) is not None:
        raise ProjectError(f"There is already a class named {name!r}.")
    if len(project.classes) >= MAX_CLASSES:
        raise ProjectError(f"A project has at most {MAX_CLASSES} classes.")
    class_id = project.next_class_id
    label = LabelClass(class_id, name, color or next_class_color(project))
    return replace(project, classes=(*project.classes, label), next_class_id=class_id + 1), label


def next_class_color(project: ProjectFile) -> str:
    """The colour a new class gets when none is chosen (it follows the class id), so the class
    editor can show it before the class is added."""
    return default_color(project.next_class_id - 1)


def with_changed_class(project: ProjectFile, class_id: int, name: str | None,
                       color: str | None) -> tuple[ProjectFile, LabelClass]:
    old = class_with_id(project, class_id)
    new_name = old.name if name is None else clean_class_name(name)
    other = class_named(project, new_name)
    if other is not None and other.class_id != class_id:
        raise ProjectError(f"There is already a class named {new_name!r}.")
    label = LabelClass(class_id, new_name, color or old.color)
    classes = tuple(label if c.class_id == class_id else c for c in project.classes)
    return replace(project, classes=classes), label


def with_classes_back(project: ProjectFile, class_ids) -> ProjectFile:
    """The project with a class for each id objects use but the file lost (a hand edit)."""
    known = {c.class_id for c in project.classes}
    lost = [LabelClass(cid, f"class {cid}", default_color(cid - 1))
            for cid in class_ids if cid not in known]
    if not lost:
        return project
    classes = (*project.classes, *lost)
    top = max(c.class_id for c in classes)
    return replace(project, classes=classes, next_class_id=max(project.next_class_id, top + 1))


def load(path: Path) -> ProjectFile:
    """Read and check the project file; ProjectError says what is wrong and where."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(f"{path} is missing.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectError(f"{path} could not be read ({exc}). Fix it by hand, or move it "
                           "away and create the project again (objects are kept in the "
                           "database).") from None
    return parse(data, path)


def parse(data: Any, where: Any = FILE_NAME) -> ProjectFile:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProjectError(f"{where} is not a samwb project file (no \"format\": \"{FORMAT}\").")
    version = data.get("version")
    if not isinstance(version, int) or version < 1:
        raise ProjectError(f"{where}: \"version\" must be a whole number, got {version!r}.")
    if version > VERSION:
        raise ProjectError(f"{where} was written by a newer samwb (project file version "
                           f"{version}, this one reads up to {VERSION}): upgrade samwb.")
    name = data.get("name")
    if not isinstance(name, str):
        raise ProjectError(f"{where}: \"name\" must be text.")
    classes = _parse_classes(data.get("classes"), where)
    top = max((c.class_id for c in classes), default=0)
    next_id = data.get("next_class_id", top + 1)
    if not isinstance(next_id, int) or next_id <= top:
        next_id = top + 1  # a hand edit added a class without bumping it: repair, never reuse
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise ProjectError(f"{where}: \"settings\" must be an object {{...}}.")
    return ProjectFile(name=name, classes=classes, next_class_id=next_id, settings=settings)


def _parse_classes(items: Any, where: Any) -> tuple[LabelClass, ...]:
    if not isinstance(items, list):
        raise ProjectError(f"{where}: \"classes\" must be a list.")
    if len(items) > MAX_CLASSES:
        raise ProjectError(f"{where}: more than {MAX_CLASSES} classes.")
    classes: list[LabelClass] = []
    seen_ids: set[int] = set()
    seen_names: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), int) or item["id"] < 1:
            raise ProjectError(f"{where}: class #{i + 1} needs a positive whole \"id\".")
        label = LabelClass(item["id"], clean_class_name(item.get("name")),
                           item.get("color") or default_color(i))
        if label.class_id in seen_ids:
            raise ProjectError(f"{where}: class id {label.class_id} is used twice.")
        if label.name.casefold() in seen_names:
            raise ProjectError(f"{where}: class name {label.name!r} is used twice.")
        seen_ids.add(label.class_id)
        seen_names.add(label.name.casefold())
        classes.append(label)
    return tuple(classes)


def save(path: Path, project: ProjectFile) -> None:
    """Write atomically and durably (``files.write_atomic``: fsynced, then renamed)."""
    text = json.dumps(project.to_json(), indent=2, ensure_ascii=False) + "\n"
    write_atomic(path, text.encode("utf-8"), durable=True, prefix=".samwb-project.")
