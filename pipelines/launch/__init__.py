"""liftoff's trainers through W&B Launch onto Vertex AI custom jobs.

    liftoff launch queue-config --hardware a100x8 --spot --service-account SA \\
        --staging-bucket gs://B/launch -o queue.yaml      # the queue's config, for the W&B UI
    liftoff launch job create llm --image IMAGE_URI      # a launchable job with a form
    liftoff launch agent --queue vertex-a100 --entity TEAM --wandb-secret SECRET_VERSION
    liftoff launch submit llm --queue vertex-a100 --preset qwen2.5-0.5b --set optim.lr=1e-4

`queue_config` builds the queue configuration from the pipelines' hardware profiles, `runner`
holds the corrected Vertex runner that `agent` registers inside W&B's own launch agent, `jobs`
creates the image jobs and enqueues runs. Written against wandb 0.31.0 (`runner.WANDB_VERSION`).
"""
