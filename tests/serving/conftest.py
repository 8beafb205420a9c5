"""What the serving tests share: one tiny language model a session (imported here, not in each
module, so it is built once); the trained VLM (`tiny_vlm_dir`) comes from tests.support.tiny_vlm,
a plugin of tests/conftest.py."""

from tests.support.tiny_model import tiny_model_dir  # noqa: F401
