"""Vision-language training (vision tower + projector + causal LM) with DDP — the vlm-ddp
trainer container.

CPU recipe (about a minute on 2 cores; a tiny ViT and Llama built from configs, a tokenizer
trained in-process, rendered shapes with questions, nothing downloaded):

    python -m trainers.vlm --preset debug
    LIFTOFF_NPROC_PER_NODE=2 python -m trainers.vlm --preset debug     # DDP over 2 processes

Real run (one process per GPU; CLUSTER_SPEC or MASTER_ADDR/... for more nodes):
    python -m trainers.vlm --preset siglip-so400m-qwen2.5-1.5b --data gs://b/vqa.jsonl
Records: {"image", "question", "answer"} or {"image", "caption"}; the image is a path, a gs://
URI or inline bytes. Every config field can be set with --set section.field=value.
"""

from __future__ import annotations

import sys

from trainers.common import entrypoint
from trainers.vlm.presets import get_preset


def _train(cfg, *, callbacks):
    from trainers.vlm.train import train  # torch and transformers: not for --help

    return train(cfg, callbacks=callbacks)


CLI = entrypoint.TrainerCli(
    module="trainers.vlm",
    description=__doc__,
    presets="debug | siglip-so400m-llama-3.2-1b | siglip-so400m-qwen2.5-1.5b | "
    "clip-l336-qwen2.5-7b-lora",
    data_help="image-text records: JSONL or Parquet, local, gs:// or /gcs/",
    lora_help="train LoRA adapters on the language model instead of all its weights",
    get_preset=get_preset,
    train=_train,
)
parser, resolve_config, main = CLI.parser, CLI.resolve_config, CLI.main

if __name__ == "__main__":
    sys.exit(main())
