"""What the serving tests share: one tiny language model and one tiny trained VLM a session
(imported here, not in each module, so the VLM is trained once, not once per module)."""

from tests.support.tiny_model import tiny_model_dir  # noqa: F401
from tests.support.tiny_vlm import tiny_vlm_dir  # noqa: F401
