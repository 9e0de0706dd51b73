# The two commands of the README's quickstart. Each sets up .venv/ first if needed.
.PHONY: demo test lint setup

demo:
	@scripts/setup.sh
	.venv/bin/workbench demo

test:
	@scripts/setup.sh --test
	.venv/bin/python -m pytest

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

setup:
	@scripts/setup.sh --test
