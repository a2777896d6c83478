# The SageMaker inference container: `calltype serve` on port 8080 with the model that
# SageMaker unpacks from ModelDataUrl (model.tar.gz) into /opt/ml/model.
#
# SageMaker runs the image as `docker run IMAGE serve`; with the entrypoint below that is
# `calltype serve`. Locally:
#   docker build -t calltype .
#   docker run --rm -p 8080:8080 -v "$PWD/models/calltype:/opt/ml/model:ro" calltype
#   curl localhost:8080/ping
#   curl -H 'Content-Type: application/json' -d '{"inputs": ["I want to cancel"]}' localhost:8080/invocations
#
# SageMaker runs x86_64 images (serverless endpoints and the ml.m5/ml.c5 instances), so both stages
# are linux/amd64 whatever the host: on an arm64 machine (e.g. Apple silicon) Docker builds under
# emulation, which is slow but gives an image SageMaker can run.
#
# Note: no Docker engine runs in the development sandbox, so this file is written to be
# simple and standard but has not been built there; build it on a machine with Docker.

FROM --platform=linux/amd64 rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p calltype --bin calltype

FROM --platform=linux/amd64 debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/calltype /usr/local/bin/calltype
# SageMaker collects stdout/stderr into CloudWatch; log invocations (counts and timings only).
ENV RUST_LOG=info
EXPOSE 8080
ENTRYPOINT ["calltype"]
CMD ["serve"]
