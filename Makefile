# make install | make demo | make test | make bench | make bench-vlm | make bench-serving | make bench-arr-coc | make lint | make lock
# demo and test install what is missing first, so each works as the first command on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Every direct and transitive version, for every extra: `make lock` writes it from pyproject.toml.
LOCK := requirements.lock
EXTRAS := train,pipelines,serve,launch,dev
# Every Dockerfile in the project (an image per folder that builds one).
DOCKERFILES = $(shell find trainers serving pipelines components -name Dockerfile)

.PHONY: install demo test bench bench-vlm bench-serving bench-arr-coc lint lock clean golden

install: $(VENV)/.installed

# Everything comes from the lock. pip and setuptools first: the editable build runs without
# build isolation, so it fetches no unpinned build backend. The lock's torch==2.13.0 resolves
# to the local CPU wheel here (pip's find-links) and to PyPI's CUDA build in the trainer image.
$(VENV)/.installed: pyproject.toml $(LOCK)
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c $(LOCK) pip setuptools
	$(BIN)/python -m pip install -q -c $(LOCK) --no-build-isolation -e '.[$(EXTRAS)]'
	touch $@

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/liftoff run llm-finetune --preset debug --workdir .liftoff

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --durations=15

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/llm_trainer.py

bench-vlm: install
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/vlm_trainer.py

bench-serving: install
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/serving.py

bench-arr-coc: install
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/arr_coc.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint $(DOCKERFILES)

# Linux x86_64, Python 3.11: where CI, Cloud Build and the images run. pip and setuptools are
# locked too (the install above builds liftoff with them).
lock: install
	printf 'pip\nsetuptools>=77\n' | $(BIN)/uv pip compile pyproject.toml - --all-extras \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--custom-compile-command 'make lock' --quiet -o $(LOCK)

clean:
	rm -rf outputs .pytest_cache .ruff_cache

# Regenerate the golden compiled pipelines the tests compare against (after an intended change).
golden: install
	$(BIN)/python -m tests.pipelines.golden
