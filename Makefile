# Every target bootstraps .venv first (scripts/bootstrap.sh; fast when nothing changed).
.PHONY: bootstrap demo test protos lint soak fuzz

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
