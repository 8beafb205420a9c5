"""The version aliases and labels of a Vertex upload (components/register/aliases.py, labels.py):
a new version of an existing model becomes its default unless the run asks otherwise, as the
SDK's `Model.upload(is_default_version=True)` makes it, and its labels name the run that made it.
Run as Vertex runs them, lightweight steps.

.venv/bin/python -m pytest -q tests/components/test_register_aliases.py
"""

import pytest

from components.register.aliases import version_aliases
from components.register.labels import run_labels
from tests.support.kfp_local import kfp_local  # noqa: F401


@pytest.mark.parametrize(
    ("aliases", "make_default", "expected"),
    [
        ([], True, ["default"]),
        (["prod", "v2"], True, ["prod", "v2", "default"]),
        (["default", "prod"], True, ["default", "prod"]),  # once
        (["prod"], False, ["prod"]),  # asked otherwise: the old default stays
    ],
)
def test_a_new_version_becomes_the_default_unless_asked_otherwise(
    kfp_local,  # noqa: F811 - the fixture
    aliases,
    make_default,
    expected,  # noqa: F811
):
    assert version_aliases(aliases=aliases, make_default=make_default).output == expected


def test_the_labels_name_the_run_that_trained_the_version(kfp_local):  # noqa: F811
    labels = {"team": "ml", "liftoff_run": "frozen-at-submit"}
    run = "llm-finetune-20261201-030000-" + "a" * 60

    out = run_labels(labels=labels, run=run).output

    assert out == {"team": "ml", "liftoff_run": run[:63]}
