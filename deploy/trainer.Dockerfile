# syntax=docker/dockerfile:1.7
# churnops-trainer: the Python side (train, promote, rollback, models, evaluate, verify, spark-score), and an
# MLflow tracking server from the same locked packages (`mlflow server …`, see deploy/compose.yaml).
#
#   docker build -f deploy/trainer.Dockerfile -t churnops-trainer .
#   docker run -e MLFLOW_TRACKING_URI=http://mlflow:5000 churnops-trainer train --data /data/customers.parquet
#
# BASE is the official slim image; `make images` passes a local Debian bookworm base with the same layout.
# SPARK=1 adds the Spark client (pyspark, pinned as the trainer's `spark` extra, and a Java 17 runtime).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ARG SPARK=1
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/churnops-trainer
COPY trainer/requirements.lock /tmp/requirements.lock
# A TLS-intercepting proxy's CA, if the build has one, comes as a secret: used here, never stored in a layer.
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
 && /opt/churnops-trainer/bin/pip install --quiet -r /tmp/requirements.lock
COPY trainer/pyproject.toml /src/trainer/
# The Spark client (a large source build) before the trainer's sources: a change to them reinstalls only the
# trainer itself, not pyspark (2–3 minutes of each image build).
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
 && if [ "$SPARK" = 1 ]; then \
      spec="$(/opt/churnops-trainer/bin/python -c "import tomllib; print(tomllib.load(open('/src/trainer/pyproject.toml','rb'))['project']['optional-dependencies']['spark'][0])")" \
      && /opt/churnops-trainer/bin/pip install --quiet --use-pep517 "$spec"; \
    fi
COPY trainer/src /src/trainer/src
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
 && /opt/churnops-trainer/bin/pip install --quiet --no-deps /src/trainer

FROM ${BASE}
ARG SPARK=1
# LightGBM needs OpenMP's runtime; the Spark client needs a JVM.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 $( [ "$SPARK" = 1 ] && echo openjdk-17-jre-headless ) \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 churnops \
 && useradd --uid 10001 --gid churnops --home-dir /var/lib/churnops --create-home --shell /usr/sbin/nologin churnops
COPY --from=build /opt/churnops-trainer /opt/churnops-trainer
COPY trainer/specs /opt/churnops-trainer/specs
ENV PATH=/opt/churnops-trainer/bin:$PATH \
    CHURNOPS_HOME=/var/lib/churnops \
    MPLBACKEND=Agg \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/churnops
HEALTHCHECK --interval=60s --timeout=20s --retries=1 CMD ["python", "-c", "import churnops_trainer.cli, lightgbm, onnxruntime"]
ENTRYPOINT ["churnops-trainer"]
CMD ["--help"]
# Last, so that a new version (the git commit) invalidates no layer above.
ARG VERSION=dev
LABEL org.opencontainers.image.title="churnops-trainer" \
      org.opencontainers.image.description="churnops trainer: LightGBM churn models, ONNX bundles, MLflow registry, Spark scorer" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
