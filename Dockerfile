# Segment Anything Workbench as a server; see "Run with Docker" in README.md.
#
#   docker build -t samwb:cpu .                              # CPU-only torch (no CUDA libraries)
#   docker build --build-arg VARIANT=cuda -t samwb:cuda .    # PyPI's default torch, CUDA inside
#   docker run -p 7860:7860 -v samwb-checkpoints:/data/checkpoints samwb:cpu
#   docker run --gpus all -p 7860:7860 -v samwb-checkpoints:/data/checkpoints samwb:cuda
#
# One base for both variants: PyPI's default torch wheel brings its own CUDA runtime libraries,
# so the CUDA image needs only the host's NVIDIA driver and container toolkit, not an
# nvidia/cuda base (whose Ubuntu has no Python 3.11).
FROM python:3.11-slim

ARG VARIANT=cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    SAM_CHECKPOINT_DIR=/data/checkpoints

WORKDIR /app

# Torch first, from the index the variant needs, at the versions requirements.txt pins. sam2 is
# a source package whose build needs torch: built against the torch just installed (no isolated
# build env, which would fetch PyPI's CUDA torch again) and without its optional CUDA extension.
COPY requirements.txt ./
RUN set -eux; \
    torch_pins="$(grep -E '^(torch|torchvision)==' requirements.txt)"; \
    case "$VARIANT" in \
      cpu) pip install $torch_pins --index-url https://download.pytorch.org/whl/cpu ;; \
      cuda) pip install $torch_pins ;; \
      *) echo "VARIANT must be cpu or cuda, got $VARIANT" >&2; exit 1 ;; \
    esac; \
    pip install setuptools wheel; \
    SAM2_BUILD_CUDA=0 pip install --no-build-isolation "$(grep -E '^sam2==' requirements.txt)"; \
    pip install -r requirements.txt

RUN useradd --create-home --uid 1000 app \
    && mkdir -p /data/checkpoints \
    && chown app:app /data/checkpoints
COPY --chown=app:app app.py ./
COPY --chown=app:app sam_backends ./sam_backends
COPY --chown=app:app workbench ./workbench
COPY --chown=app:app server ./server
COPY --chown=app:app ui ./ui
COPY --chown=app:app assets ./assets

USER app
VOLUME /data/checkpoints
EXPOSE 7860

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", \
         "import urllib.request as u; u.urlopen('http://127.0.0.1:7860/healthz', timeout=4)"]

CMD ["python", "app.py", "--host", "0.0.0.0"]
