# make install | make demo | make test | make bench | make bench-vlm | make lint
# demo and test install what is missing first, so each works as the first command on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned to the CPU wheel: any other spec pulls gigabytes of CUDA packages.
TORCH := torch==2.13.0

.PHONY: install demo test bench bench-vlm lint clean golden

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[train,pipelines,serve,dev]' $(TORCH)
	touch $@

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/liftoff run llm-finetune --preset debug --workdir .liftoff

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/llm_trainer.py

bench-vlm: install
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/vlm_trainer.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf outputs .pytest_cache .ruff_cache

# Regenerate the golden compiled pipelines the tests compare against (after an intended change).
golden: install
	$(BIN)/python -m tests.pipelines.golden
