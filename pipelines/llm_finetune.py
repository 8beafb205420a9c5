"""The llm-finetune pipeline: supervised fine-tuning of a causal LM (full or LoRA),
prepare_data -> train -> evaluate -> gate -> register -> deploy.

    liftoff run llm-finetune --preset debug                 # local target, about 2 minutes
    liftoff compile llm-finetune --hardware a100x1 -o llm-finetune.yaml
    liftoff submit llm-finetune --project P --region R --pipeline-root gs://B/root

A declaration: pipelines/declaration.py makes the pipeline for either target.
"""

from pipelines.declaration import Pipeline
from trainers.llm.presets import get_preset

PIPELINE = Pipeline(
    name="llm-finetune",
    summary="supervised fine-tuning of a causal LM (full or LoRA), gated register and deploy",
    trainer="llm",
    presets=get_preset,
    default_hardware="a100x1",
    gate_metrics=("exact_match", "neg_eval_loss"),
    gate_threshold=0.05,
    sample_instances=("What is 12 + 7?", "What is 40 - 15?"),
    samples_param="sample_prompts",
)
