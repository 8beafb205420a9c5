"""Supervised fine-tuning of a causal LM (full or LoRA) — the llm-finetune trainer container.

CPU recipe (about a minute on 2 cores; a tiny Llama, a tokenizer trained in-process and a
synthetic arithmetic set, nothing downloaded):

    python -m trainers.llm --preset debug

Real run: python -m trainers.llm --preset qwen2.5-7b-lora --data gs://b/train.jsonl --lora
Every config field can be set with --set section.field=value (e.g. --set optim.lr=1e-4).
"""

from __future__ import annotations

import sys

from trainers.common import entrypoint
from trainers.llm.presets import get_preset


def _train(cfg, *, callbacks):
    from trainers.llm.train import train  # torch and transformers: not for --help

    return train(cfg, callbacks=callbacks)


CLI = entrypoint.TrainerCli(
    module="trainers.llm",
    description=__doc__,
    presets="debug | llama-3.2-1b | llama-3.1-8b-lora | qwen2.5-0.5b | qwen2.5-7b-lora",
    data_help="training records: JSONL or Parquet, local, gs:// or /gcs/",
    lora_help="train LoRA adapters instead of all weights",
    get_preset=get_preset,
    train=_train,
)
parser, resolve_config, main = CLI.parser, CLI.resolve_config, CLI.main

if __name__ == "__main__":
    sys.exit(main())
