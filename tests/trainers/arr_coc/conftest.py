"""The tiny Qwen3-VL and a batch of scenes, shared by the ARR-COC tests (read-only)."""

from tests.support.tiny_qwen3_vl import scene_batch, tiny_qwen  # noqa: F401
