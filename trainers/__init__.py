"""liftoff trainers: the ML core and the entrypoints that run inside Vertex AI CustomJobs.

Run one with `python -m trainers.llm --help`. Nothing here imports kfp, GCPC or
google.cloud.aiplatform: these modules ship in the trainer image alone.
"""
