"""The Hugging Face Spaces front matter in README.md agrees with requirements.txt and app.py."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def front_matter() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.match(r"\A---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, "README.md must start with a --- front matter block for Hugging Face Spaces"
    fields = {}
    for line in match.group(1).splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip().strip("\"'")
    return fields


def pinned(package: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(rf"^\s*{re.escape(package)}\s*==\s*([^\s;#]+)", line, re.IGNORECASE)
        if match:
            return match.group(1)
    raise AssertionError(f"{package} is not pinned with == in requirements.txt")


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_front_matter_matches_requirements():
    fields = front_matter()
    assert fields["sdk"] == "gradio"
    assert fields["sdk_version"] == pinned("gradio")
    assert version_tuple(fields["sdk_version"]) >= (6, 25, 0)  # SSRF / path traversal fixes
    assert fields["app_file"] == "app.py" and (ROOT / "app.py").is_file()
    assert version_tuple(fields["python_version"]) >= (3, 10)
    assert fields.get("title")


def test_installed_gradio_is_the_pinned_one():
    import gradio

    assert gradio.__version__ == pinned("gradio")
