# EmoPipe — make targets for every stage, the demo, tests and benchmarks (`make help` prints this).
#   make demo            install, build, generate demo data, run the whole pipeline on it
#   make test            build once (debug) and run the test suite
#   make deps            install the Debian packages (apt-get; only what is missing)
#   make build           the release build (.build/release/emopipe and the bench drivers)
#   make ingest|audio|faces|split|train|evaluate|export
#                        run stages through that one, of $(MANIFEST) into $(WORKDIR)
#   make all             run every stage;   make status   what is up to date in $(WORKDIR)
#   make nightly         reprocess what changed under the data root, report to $(WORKDIR)/nightly/
#   make bench           speed and memory against baselines (needs the shared data)
#   make venv            the Python test oracles (.venv: librosa, onnxruntime, ...)
#   make fuzz            random inputs against the name parser, probe/decode, the shard reader and manifests
#   make slurm-check     the Slurm scale-out on a one-node cluster (started if none answers)
#   make image           the container image the Kubernetes Jobs run (podman, no registry)
#   make clean           remove .build and $(WORKDIR)-demo
# Variables: MANIFEST (manifests/default.yaml), WORKDIR (work), DATA (a data root instead of the
# remembered or the manifest's), SWIFT (swift on PATH).
SHELL := /bin/bash
MANIFEST ?= manifests/default.yaml
WORKDIR ?= work
NIGHTLY_MANIFEST ?= manifests/nightly.yaml
# The data root for the stage targets, all, status and nightly (empty: the one the work directory
# remembers, else the manifest's `data`). Only from make's command line (`make train DATA=~/RAVDESS`):
# an unrelated DATA in the environment must not become the data root a run then remembers.
ifeq ($(origin DATA),environment)
ENVIRONMENT_DATA := $(DATA)
DATA :=
# Still set: make -e lets the environment win, as asked.
ifneq ($(ENVIRONMENT_DATA),)
ifeq ($(DATA),)
$(warning DATA in the environment is not a data root for make: give it on make's command line, make train DATA=...)
endif
endif
endif
DATA ?=
# Handed to the shell through the environment, as written, so no quoting can go wrong; bash turns a
# leading ~/ into the home folder.
export EMOPIPE_MAKE_DATA := $(DATA)
DATA_OPTION := $(if $(DATA),--data "$${EMOPIPE_MAKE_DATA/#\~\//$$HOME/}")
DEMO_DATA ?= demo-data
SWIFT ?= swift
EMOPIPE := .build/release/emopipe
VENV := .venv

# Debian packages the project needs: C libraries it links, tools the demo data and tests use.
APT_PACKAGES := pkg-config libsqlite3-dev libavformat-dev libavcodec-dev libavutil-dev libswscale-dev \
	libswresample-dev libsndfile1-dev libopenblas-dev libdnnl-dev libdlib-dev libdlib-data \
	ffmpeg espeak-ng sox flac time python3-skimage python3-venv python3-pip
# What `make slurm-check` (and so `make test`) runs the Slurm scale-out on.
CHECK_PACKAGES := slurm-wlm munge
# The image the Kubernetes Jobs run (pipelines/deploy/kubernetes/*.yaml name it; `make test` checks).
IMAGE ?= localhost/emopipe:latest

STAGES := ingest audio faces split train evaluate export

.PHONY: deps build test demo demo-data all $(STAGES) status nightly venv bench fuzz slurm-check image clean help

help:
	@sed -n '1,/^SHELL/{/^#/p}' Makefile

# Idempotent: installs only what is missing, so a second call costs a dpkg query.
deps:
	@missing=$$(for p in $(APT_PACKAGES) $(CHECK_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all Debian packages present"; fi

build:
	$(SWIFT) build -c release

# One debug build serves the tests and the CLI they drive (CI has 2 cores: compile once).
test: venv
	$(SWIFT) build --build-tests
	EMOPIPE_BIN=$(CURDIR)/.build/debug/emopipe $(SWIFT) test --skip-build

# submit.sh's 3 workers and merge-and-train on RAVDESS actors 01-03 must end COMPLETED with results
# equal to one process's (scripts/slurm-check says how). The same debug build as `make test`: another
# build command would make the two rebuild each other's objects.
slurm-check: venv
	$(SWIFT) build --build-tests
	EMOPIPE=$(CURDIR)/.build/debug/emopipe scripts/slurm-check

# Needs podman and mmdebstrap (Debian packages) and the release build; see scripts/build-image.
image: build
	scripts/build-image $(EMOPIPE) $(IMAGE)

# The run's summary ends with the folder its results are in: nothing is printed after it.
demo: deps build demo-data
	$(EMOPIPE) run manifests/demo.yaml --workdir $(WORKDIR)-demo

demo-data:
	scripts/make-demo-data $(DEMO_DATA)

# One target per stage: runs the stage and whatever it needs that is not up to date.
$(STAGES): build
	$(EMOPIPE) run $(MANIFEST) --workdir $(WORKDIR) --until $@ $(DATA_OPTION)

all: build
	$(EMOPIPE) run $(MANIFEST) --workdir $(WORKDIR) $(DATA_OPTION)

status: build
	$(EMOPIPE) status $(MANIFEST) --workdir $(WORKDIR) $(DATA_OPTION)

# Exit status for alerting: 3 sources failed, 4 metrics fell beyond the manifest's tolerance.
nightly: build
	$(EMOPIPE) nightly $(NIGHTLY_MANIFEST) --workdir $(WORKDIR) $(DATA_OPTION)

# Test oracles only (librosa, onnxruntime); never on the pipeline's own path.
venv: $(VENV)/.done
$(VENV)/.done: scripts/requirements-test.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
	touch $@

clean:
	rm -rf .build $(WORKDIR)-demo

# Speed and memory against baselines: prints a table, writes bench/results.json.
# (`make build` builds every product, the bench drivers included.)
bench: build venv
	python3 bench/bench.py

# Seeded random inputs (emopipe-fuzz): every target for FUZZ_SECONDS; any input must be accepted or
# rejected with a typed error. A crash stops make; a failing input is saved in fuzz-failures/ to replay
# (`emopipe-fuzz replay FILE --target T`). FUZZ_SEED repeats a run (default: a new seed, printed).
# Debug build, like `make test` (overflow and bounds checks are on either way): FUZZ_CONFIG=release for speed.
FUZZ_SECONDS ?= 60
FUZZ_SEED ?=
FUZZ_CONFIG ?= debug
fuzz:
	$(SWIFT) build -c $(FUZZ_CONFIG) --product emopipe-fuzz
	.build/$(FUZZ_CONFIG)/emopipe-fuzz run --seconds $(FUZZ_SECONDS) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))
