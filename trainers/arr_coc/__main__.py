"""ARR-COC: a Qwen3-VL whose LM sees only the visual tokens that matter for the question, trained
in three stages, each starting from the previous stage's model — the arr-coc trainer container.

CPU recipe (about a minute a stage on 2 cores; a tiny Qwen3-VL built from a config, a tokenizer
trained in-process, rendered scenes with object masks, nothing downloaded):

    python -m trainers.arr_coc --preset debug --stage 1 --output-dir out/s1
    python -m trainers.arr_coc --preset debug --stage 2 --init-model out/s1 --output-dir out/s2
    python -m trainers.arr_coc --preset debug --stage 3 --init-model out/s2 --output-dir out/s3
    LIFTOFF_NPROC_PER_NODE=2 python -m trainers.arr_coc --preset debug --stage 1    # DDP

Stage 1, where to look: the relevance head against the object masks (the debug preset's scratch
base also learns the scenes on every visual token); 2, participatory: answer cross-entropy over
the kept tokens; 3, procedural: hard examples, 2·CE + λ·expected budget.
Real run: python -m trainers.arr_coc --preset qwen3-vl-2b --stage 1 --data gs://b/vqa.jsonl
Records: {"image", "question", "answer"} with the referred object's "mask" or "boxes" (stage 1
needs them), "hard": true marks stage 3's examples. Every config field can be set with
--set section.field=value (e.g. --set relevance.budget=0.1).
"""

from __future__ import annotations

import sys

from trainers.arr_coc.presets import PRESETS, get_preset
from trainers.common import entrypoint


def _train(cfg, *, callbacks):
    from trainers.arr_coc.train import train  # torch and transformers: not for --help

    return train(cfg, callbacks=callbacks)


CLI = entrypoint.TrainerCli(
    module="trainers.arr_coc",
    description=__doc__,
    presets=" | ".join(PRESETS),
    data_help="VQA records with masks or boxes: JSONL or Parquet, local, gs:// or /gcs/",
    lora_help="train LoRA adapters on the language model in stages 2 and 3",
    get_preset=get_preset,
    train=_train,
    flags=(
        entrypoint.Flag(
            name="--stage",
            field="relevance.stage",
            metavar="1|2|3",
            help="the stage to train: 1 where to look, 2 participatory, 3 procedural (budget)",
        ),
        entrypoint.Flag(
            name="--init-model",
            field="init_model",
            metavar="DIR",
            help="the previous stage's saved model (local, gs:// or /gcs/); stages 2 and 3 need it",
        ),
    ),
)
parser, resolve_config, main = CLI.parser, CLI.resolve_config, CLI.main

if __name__ == "__main__":
    sys.exit(main())
