"""The app on a project, in a process of its own: the projects browser test kills it with
SIGKILL mid-edit and starts it again.

    python tests/browser/project_app.py PROJECT_DIR PORT SAM2_CHECKPOINT TEMP_DIR

Serves random-weight SAM 2 (the test model, from ``SAM2_CHECKPOINT``) and GrabCut on
127.0.0.1:PORT, offline, until killed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]
os.environ["SAM_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def main() -> None:
    import app
    from sam_backends.testing.random_models import small_sam2_spec
    from workbench.config import AppConfig, ExtraModel

    project, port, checkpoint, temp = sys.argv[1:5]
    spec = small_sam2_spec()
    config = AppConfig(models=("grabcut",), extra_models=(ExtraModel(spec, Path(checkpoint)),),
                       default_model=spec.model_id, device="cpu", precision="fp32",
                       examples_dir=None, project_dir=Path(project), temp_dir=Path(temp),
                       host="127.0.0.1", port=int(port))
    demo = app.build_demo(config)
    app.launch(demo, quiet=True, share=False)


if __name__ == "__main__":
    main()
