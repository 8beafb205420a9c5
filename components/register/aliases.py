"""The version aliases of a model upload (vertex target): the pipeline's own, plus `default` when
the new version is to become the model's default.

Vertex makes the first version of a model its default, but a new version of an existing model
(`parent_model`) only when its aliases say `default`; GCPC's ModelUploadOp adds none, while the
SDK's `Model.upload(is_default_version=True)` does. A list parameter cannot be extended inside
the pipeline definition, so a small step does it at run time.
"""

from kfp import dsl

from components.images import GOOGLE_STEPS_IMAGE


@dsl.component(base_image=GOOGLE_STEPS_IMAGE, install_kfp_package=False)
def version_aliases(aliases: list, make_default: bool) -> list:
    """`aliases`, with "default" added when `make_default`, each once."""
    wanted = [*aliases, "default"] if make_default else list(aliases)
    return list(dict.fromkeys(wanted))
