# The two commands: `make demo` and `make test`. Both set up everything they need first.
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup test lint unit demo bench sandbox-up sandbox-down clean

setup:
	@bash scripts/setup.sh

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test: setup lint
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

unit: setup
	$(PY) -m pytest -p no:cacheprovider tests/unit $(PYTEST_ARGS)

demo: setup
	$(PY) -m scripts.demo

bench: setup
	$(PY) -m bench

sandbox-up: setup
	$(PY) -m tests.sandbox up

sandbox-down:
	$(PY) -m tests.sandbox down

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache

# Replays the Containerfile in a debootstrap'd Debian root and runs the image against the
# sandbox (root needed; ~1 min cold after the first debootstrap, ~30 s warm). Not in `test`.
.PHONY: image-check
image-check: setup
	bash scripts/verify_image.sh
