"""Pieces every trainer shares: storage, distributed set-up, checkpoints, tracking, speed."""
