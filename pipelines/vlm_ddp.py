"""The vlm-ddp pipeline: a vision-language model trained with DistributedDataParallel, one
process per GPU on 8×A100 nodes; prepare_data -> train -> evaluate -> gate -> register -> deploy.

    liftoff run vlm-ddp --preset debug               # local target: DDP over 2 CPU processes
    liftoff compile vlm-ddp --nodes 2 --spot -o vlm-ddp.yaml     # a2-highgpu-8g ×2 nodes
    liftoff submit vlm-ddp --project P --region R --pipeline-root gs://B/root --nodes 2

The trainer (`python -m trainers.vlm`) relaunches itself under torchrun with one process per GPU;
more than one node makes a CustomJob of a primary pool and a worker pool (pipelines/targets.py).
A declaration: pipelines/declaration.py makes the pipeline for either target.
"""

from pipelines.declaration import Pipeline
from trainers.vlm.presets import get_preset

# `trainers.vlm.synthetic.sample_instances()`: a red square and a green circle, 32x32 PNGs,
# written out so that compiling needs no image library (a test keeps the two the same).
SAMPLE_INSTANCES = (
    {
        "image": {
            "b64": "iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAAAOklEQVR4nGP8//8/Ay0BE01NH7Vg1"
            "IJRC0YtGLVg1IJRC0YtoBpgIUoVIyN2cSLaVEM/iEYtGAEWAABhiwU/draPJAAAAABJRU5ErkJggg=="
        },
        "prompt": "what colour is the square?",
    },
    {
        "image": {
            "b64": "iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAAAWUlEQVR4nO3TQQoAIAgEQI3+/2W7RZ"
            "SH1QiK1lNB7CSZmpmcrBo6raJ9bQLdrOTS1+0u4MYhRqCDXP0DuDODDFKggykOHNPYPwBDx7rmDQgQIECAAAEC"
            "jwMNtawPP99vtKcAAAAASUVORK5CYII="
        },
        "prompt": "what colour is the circle?",
    },
)

PIPELINE = Pipeline(
    name="vlm-ddp",
    summary="a vision-language model trained with DDP on 8xA100 nodes, gated register and deploy",
    trainer="vlm",
    presets=get_preset,
    default_hardware="a100x8",
    gate_metrics=("vqa_exact_match", "neg_eval_loss", "neg_caption_loss", "neg_vqa_loss"),
    # The debug set's answer-prior baseline (trainers.vlm.evaluate.chance_exact_match) is ~0.34.
    gate_threshold=0.4,
    sample_instances=SAMPLE_INSTANCES,
    local_nproc_per_node=2,  # the local target's DDP: two gloo processes on the CPU
)
