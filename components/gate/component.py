"""The gate KFP component: whether the evaluated model may be registered and deployed.

Its one output is what the pipeline's `dsl.If` tests. A single output matters: kfp.local
cannot resolve a named output of a multi-output task inside a condition (kfp 2.17). It needs
nothing but Python, so on Vertex it runs in the small image of Google's own steps.
"""

from kfp import dsl

from components.images import GOOGLE_STEPS_IMAGE


@dsl.component(base_image=GOOGLE_STEPS_IMAGE, install_kfp_package=False)
def gate(value: float, threshold: float, metric: str = "") -> bool:
    """True when `value` >= `threshold` (every gate metric is higher-is-better)."""
    passed = value >= threshold
    verdict = "passed" if passed else "failed"
    print(f"gate: {metric or 'metric'} {value:.4f} vs threshold {threshold:.4f}: {verdict}")
    return passed
