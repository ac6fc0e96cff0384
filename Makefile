# The two commands: `make demo` and `make test`. Both set up everything they need first.
PY := .venv/bin/python
# The tests run in TEST_WORKERS processes (pytest-xdist), a test file per worker at a time:
# each worker starts its own control plane, all share this machine's glusterd (README,
# "Tests in parallel"). TEST_WORKERS=0 is one process.
TEST_WORKERS ?= 3
PYTEST := $(PY) -m pytest -p no:cacheprovider \
  $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
PYTEST_ARGS ?=
# Kubernetes versions of the sandbox (testenv/versions): the whole suite runs on the default,
# the compatibility subset (tests/conftest.py) on the others. K8S_VERSION=MAJOR.MINOR runs
# one version only: `make test K8S_VERSION=1.21`.
K8S_DEFAULT := $(shell awk '$$2 == "default" {print $$1}' testenv/versions)
K8S_COMPAT := $(shell awk '$$2 == "compat" {print $$1}' testenv/versions)
K8S_VERSION ?=
K8S_BUILD := $(or $(K8S_VERSION),$(K8S_DEFAULT) $(K8S_COMPAT))

.PHONY: setup controlplanes glusterservers test lint unit demo bench sandbox-up sandbox-down clean

setup:
	@bash scripts/setup.sh

# Builds (or finds in the cache) the control plane of every version the tests will start,
# before pytest runs: a cold build takes minutes, longer than any test may.
controlplanes: setup
	@for v in $(K8S_BUILD); do bash testenv/build.sh "$$v" >/dev/null || exit 1; done

# Builds (or finds in the cache) the Debian chroots of the GlusterFS servers of the version
# matrix (tests/sandbox/gluster_versions.py): bullseye (9.2) and trixie (11.1), side by side
# (~2 min cold, nothing when cached).
GLUSTER_SUITES := bullseye trixie
glusterservers: setup
	@pids=""; for s in $(GLUSTER_SUITES); do \
	  bash tests/sandbox/gluster_chroot.sh "$$s" >/dev/null & pids="$$pids $$!"; \
	done; for p in $$pids; do wait $$p || exit 1; done

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# Everything on the default version (the gluster server-version matrix, marked gluster_compat,
# included), then the compatibility subset on each other version.
# With K8S_VERSION: that version only (the whole suite for the default, else unit tests and
# the compatibility subset).
test: setup lint controlplanes glusterservers
ifeq ($(K8S_VERSION),)
	K8S_VERSION=$(K8S_DEFAULT) $(PYTEST) $(PYTEST_ARGS)
	@for v in $(K8S_COMPAT); do \
	  echo "K8S_VERSION=$$v $(PYTEST) -m compat tests/integration $(PYTEST_ARGS)"; \
	  K8S_VERSION=$$v $(PYTEST) -m compat tests/integration $(PYTEST_ARGS) || exit 1; \
	done
else ifeq ($(K8S_VERSION),$(K8S_DEFAULT))
	K8S_VERSION=$(K8S_VERSION) $(PYTEST) $(PYTEST_ARGS)
else
	$(PYTEST) tests/unit $(PYTEST_ARGS)
	K8S_VERSION=$(K8S_VERSION) $(PYTEST) -m compat tests/integration $(PYTEST_ARGS)
endif

unit: setup
	$(PYTEST) tests/unit $(PYTEST_ARGS)

demo: setup
	$(PY) -m scripts.demo

bench: setup
	$(PY) -m bench $(if $(QUICK),--quick)

sandbox-up: setup
	$(PY) -m tests.sandbox up

sandbox-down:
	$(PY) -m tests.sandbox down

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache

# Builds the image with buildah from a locally made Debian base (root; scripts/image.sh) and
# prints its name. `make test` builds it too and runs it like the CronJob's pod
# (tests/integration/test_image.py); `make image-check` runs only that test.
.PHONY: image image-check
image: setup
	bash scripts/image.sh build

image-check: setup
	@bash testenv/build.sh $(K8S_DEFAULT) >/dev/null
	K8S_VERSION=$(K8S_DEFAULT) $(PYTEST) tests/integration/test_image.py $(PYTEST_ARGS)
