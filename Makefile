# Every target bootstraps .venv first (scripts/bootstrap.sh; fast when nothing changed).
.PHONY: bootstrap demo test protos lint

bootstrap:
	bash scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/hushtune demo

test:
	bash scripts/test.sh

protos: bootstrap
	.venv/bin/python scripts/gen_protos.py

lint: bootstrap
	cd protos && ../.venv/bin/buf lint
	.venv/bin/ruff check .
	.venv/bin/mypy
