# Every target bootstraps .venv first (scripts/bootstrap.sh; fast when nothing changed).
.PHONY: bootstrap demo test protos lint soak fuzz lock

bootstrap:
	bash scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/hushtune demo

test:
	bash scripts/test.sh

# 8 SDK clients for 10 minutes through Redis restarts, worker kills and connection resets
# (docs/RELIABILITY.md); extra arguments: make soak SOAK_ARGS="--minutes 2".
soak: bootstrap
	nice -n 5 .venv/bin/python scripts/soak.py $(SOAK_ARGS)

# Over 10,000 random, mutated and garbage requests to every RPC (docs/RELIABILITY.md); cases
# and statuses per RPC go to $(FUZZ_REPORT).
FUZZ_REPORT ?= .artifacts/fuzz-report.json
fuzz: bootstrap
	mkdir -p $(dir $(FUZZ_REPORT))
	HUSHTUNE_FUZZ_PROFILE=long HUSHTUNE_FUZZ_REPORT=$(FUZZ_REPORT) \
	  nice -n 10 .venv/bin/pytest tests/fuzz/test_fuzz_rpcs.py -q

protos: bootstrap
	.venv/bin/python scripts/gen_protos.py

lint: bootstrap
	cd protos && ../.venv/bin/buf lint
	.venv/bin/ruff check .
	.venv/bin/mypy

# requirements-dev.lock: every package of the development and CI environment (the [dev] extra of
# pyproject.toml), pinned with hashes, for Python 3.11.7 on Linux (markers such as concrete-ml's
# protobuf pin depend on the full Python version). Existing pins are kept; after editing
# pyproject.toml, `make lock` adds or moves only what the edit needs. To move everything to the
# newest allowed versions: make lock LOCK_ARGS=--upgrade (or --upgrade-package NAME).
# uv runs from its own venv (.lock-tools), never from .venv.
UV_VERSION ?= 0.13.9
LOCK_ARGS ?=
lock:
	test -x .lock-tools/bin/uv || { python3 -m venv .lock-tools \
	  && .lock-tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); }
	.lock-tools/bin/uv pip compile pyproject.toml --extra dev --generate-hashes \
	  --python-version 3.11.7 --python-platform x86_64-manylinux_2_28 \
	  --custom-compile-command "make lock" $(LOCK_ARGS) -o requirements-dev.lock
