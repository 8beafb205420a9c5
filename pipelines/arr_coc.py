"""The arr-coc pipeline: ARR-COC, a Qwen3-VL that sees only the visual tokens relevant to the
question under a token budget, trained in three stages, each starting from the one before;
prepare_data -> stage-1 -> stage-2 -> stage-3 -> evaluate -> gate -> register -> deploy.

    liftoff run arr-coc --preset debug                   # local target: a tiny Qwen3-VL, CPU
    liftoff compile arr-coc --param preset=qwen3-vl-2b -o arr-coc.yaml     # one A100 per stage
    liftoff submit arr-coc --project P --region R --pipeline-root gs://B/root \
        --param preset=qwen3-vl-2b

Each stage is `python -m trainers.arr_coc --stage N` (on Vertex a CustomJob of its own), and
stages 2 and 3 get the previous stage's Model artifact as `--init-model DIR`: (1) where to look,
the relevance head against object masks, (2) participatory, answer cross-entropy through the
kept tokens, (3) procedural, hard scenes and the expected token budget. The deploy check asks
about two rendered scenes, each at its own budget; the server answers with the kept cells.
A declaration: pipelines/declaration.py makes the pipeline for either target.
"""

from pipelines.declaration import Pipeline, TrainStage
from trainers.arr_coc.presets import get_preset

# `trainers.arr_coc.scenes.scene_records(2, seed=5)`: 128x128 scenes of three objects, only the
# one asked about coloured (an orange triangle, a purple diamond), written out so that compiling
# needs no image library (a test keeps the two the same). Each carries its own budget.
SAMPLE_INSTANCES = (
    {
        "image": {
            "b64": "iVBORw0KGgoAAAANSUhEUgAAAIAAAACACAIAAABMXPacAAACoklEQVR4nO2bS7LaQBDATCo5LIfI6h"
            "2Cw2ZBFmwo8Ge6ZyiNaWltKJfUY2xjX+73+yIcv+gdqI4BYAwAYwAYA8AYAMYAMAaAMQCMAWAMAGMAGAPAGADG"
            "ADAGgDEAjAFgDADTFeB2u43aj7LkAzzs26CTZIBn7zboIRPg3bgN0oQDbLm2QY5YgH3LNkgQCNDi1wZRWgO0m7"
            "VBiEvLs6E5p9frNfGpahyvgPREuxRaOAjQKdEGh+wFGKKvWoN/P5fQ9psBBoqr1iDEeoDhyoo0eIx/aBGsBPiQ"
            "rCINoqwE+NDp49eflT4PfvsiWD8EDZf19fbTbP4ID1RWwf77yDcugr3T0CHiKtjv4eBCrFNfEftbw96yCI5vRa"
            "QlFrHfSdPd0ITKOvb3x/xwEXzksZQ69vtpDdDutJT9lqP8/jaBFdBitpT9IcQOQft+q9lvv9zd2TL8G7BluZr9"
            "UWR+hN9dF7Qfve+/tX3yLOjZeEH7A8mfhj6817QfHf+dTzU9FSEv5AIsy/Ln76tt3w8Ik7a/+lkDwBggRs/4r3"
            "6DAWAMEKB//N+/xwAwBmhl1Pi/fJvXATCuAJjf9A4cs/pI3dfcApn6EHT4NOMXZJj3EFTklbRJA9R5JW3GAFGn"
            "p24wXYCczfM2mC5ANeYK0DPIJ10EcwUoiAFgDABjABgDwBgAZq4APTfXTnpjbq4ABZkuQG6QTzr+y4QBlrjN89"
            "pf5gywVHojatIAS5k3oqb+S/KB/wnLB5n3EFQEA8AYAMYAMAaAMQCMAWAMAGMAGAPAGADGADAGgDEAjAFgDABj"
            "ABgDwBgAxgAwBoAxAIwBYAwAYwAYA8AYAMYAMAaAMQCMAWAMAGMAGAPAGADGADAGgDEAjAFgDABjABgDwBgAxg"
            "AwBoAxAMx/ZqS+wnoeFLIAAAAASUVORK5CYII="
        },
        "prompt": "what colour is the triangle?",
        "budget": 0.25,
    },
    {
        "image": {
            "b64": "iVBORw0KGgoAAAANSUhEUgAAAIAAAACACAIAAABMXPacAAACH0lEQVR4nO3dwU0DQRQE0W9EHgREJD"
            "4TB2dHQkBEYg4ICwS2Z3Z3tqZF1RVhWf3+WlyAw/l8LuN6oN/Af08AOAHgBIATAE4AOAHgBIATAE4AOAHgBIAT"
            "AE4AOAHgBIATAE4AOAHgBIATAE4AOAHgBIATAE4AOAHgBIATAE4AOAHgBIATAE4AuGyA16c3+i2sLRjgc/10g1"
            "SA77tHG0QC/F481yAP4NrWoQZhALdXTjRIAmjZN84gBqB92SyDDIDeTYMMAgCWrZliMDvAmh0jDKYGWL/g/AZT"
            "A7y8P+OvMLqpAWrdgvOvX/MD1NId91z/dDot/t4AgOpfc//bX2yQAVA9m+68/przryCAalsW/NxfJpEEUPf2Df"
            "rkuRQGUNdXnuFnngUeeQD119bI+uvPv0IB6ufiM9z+pV6VVID62p1af5Pzr2iAmuz2L3XZZANQbXX+JcCg2oUE"
            "6G7D8y8BxtXoJEBf255/CTC0Fi0BOtr8/EuA0d01E6C1EedfAuzQbTkBmhp0/iXAPt3wO/hvrNh8AuAEgBMATg"
            "A4AeAEgBMATgA4AeAEgBMATgA4AeAEgBMATgA4AeAEgBMATgA4AeAEgBMATgA4AeAEgBMATgA4AeAEgHuk30BA"
            "638743g8XvuSTwCcAHACwAkAJwCcAHACwAkAJwCcAHACwAkAJwCcAHACwAkAJwCcAHACwAkAJwCcf7QPzicATg"
            "A4AeA+AP63eOWNXad8AAAAAElFTkSuQmCC"
        },
        "prompt": "what colour is the diamond?",
        "budget": 0.5,
    },
)

PIPELINE = Pipeline(
    name="arr-coc",
    summary="ARR-COC: a Qwen3-VL that sees only the visual tokens relevant to the question, "
    "three training stages, gated register and deploy",
    trainer="arr_coc",
    presets=get_preset,
    # One A100 (40 GB) per stage: the real presets train the relevance head (and LoRA on the
    # LM) of a Qwen3-VL of up to 8B parameters in bf16 beside its frozen vision tower, which
    # fits one GPU; each stage is short, so a single-GPU machine is what it costs least on.
    default_hardware="a100x1",
    # Answer accuracy at the model's own budget first (evaluate also scores the others).
    gate_metrics=(
        "accuracy_at_budget",
        "accuracy_adaptive",
        "accuracy_all_tokens",
        "precision_at_k",
    ),
    # A debug question asks which of six colours the named shape has: guessing scores ~0.17.
    gate_threshold=0.3,
    sample_instances=SAMPLE_INSTANCES,
    stages=tuple(
        TrainStage(name=f"stage-{n}", trainer_args=("--stage", str(n))) for n in (1, 2, 3)
    ),
)
