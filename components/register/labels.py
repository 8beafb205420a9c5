"""The labels of a model upload (vertex target): the pipeline's own, plus `liftoff_run` naming the
run that trained the model.

The run's name is known only when the run starts: a template or a schedule made at submit time
cannot carry it (every scheduled retrain would claim the same run), so a small step adds it at
run time from the job's own name. GCP label values take at most 63 lowercase letters, digits,
`_` and `-`; pipeline job names already use only those.
"""

from kfp import dsl

from components.images import GOOGLE_STEPS_IMAGE

RUN_LABEL = "liftoff_run"
MAX_LABEL_VALUE = 63


@dsl.component(base_image=GOOGLE_STEPS_IMAGE, install_kfp_package=False)
def run_labels(labels: dict, run: str) -> dict:
    """`labels` with `liftoff_run` set to this run's name (cut to the 63 characters GCP allows)."""
    return {**labels, "liftoff_run": run.lower()[:63]}
