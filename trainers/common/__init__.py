"""What every trainer shares: the one training loop (loop.py) and the task protocol it drives
(task.py), checkpoints, distributed set-up, storage, tracking, configs, data records, packing."""
