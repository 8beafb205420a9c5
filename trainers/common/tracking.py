"""The seam between trainers and experiment tracking (W&B), with a do-nothing default.

    tracker = start_tracker(enabled=True, project="liftoff", config=defaults, job_type="sft",
                            wandb_secret="projects/p/secrets/wandb-api-key/versions/latest")
    config = tracker.run_config()          # re-read every hyperparameter: Launch may override
    tracker.use_artifact(name="alpaca", type="dataset", uri="gs://b/data/alpaca.jsonl")
    tracker.log({"train/loss": 1.9}, step=step)
    tracker.log_artifact(name="sft-model", type="model", uri="gs://b/runs/7/model")
    tracker.finish()

Without a `WANDB_API_KEY` (after the optional Secret Manager fetch) the run is offline and can
be uploaded later with `wandb sync`. Metrics are plotted against `global_step`, not W&B's
own `_step`, which restarts when a run is resumed. `wandb` is imported only once a tracker
is started, so importing this module stays cheap.
"""

from __future__ import annotations

import copy
import os
import posixpath
import sys
from typing import Any, Protocol

STEP_METRIC = "global_step"
FUSE_ROOT = "/gcs/"  # Vertex's mount of gs:// (as in trainers.common.storage)


class Tracker(Protocol):
    def run_config(self) -> dict: ...
    def log(self, metrics: dict[str, float], *, step: int) -> None: ...
    def log_artifact(
        self,
        *,
        name: str,
        type: str,
        uri: str,
        metadata: dict | None = None,
        aliases: list[str] | None = None,
    ) -> None: ...
    def use_artifact(
        self, *, name: str, type: str, uri: str, metadata: dict | None = None
    ) -> None: ...
    def log_table(self, key: str, *, columns: list[str], rows: list[list], step: int) -> None: ...
    def log_lines(
        self, key: str, *, xs: list, lines: dict[str, list], title: str, x_name: str, step: int
    ) -> None: ...
    def reference(self) -> dict: ...
    def finish(self, *, exit_code: int = 0) -> None: ...


class NullTracker:
    """Tracks nothing; `run_config` hands back the config it was given."""

    def __init__(self, config: dict | None = None) -> None:
        self._config = copy.deepcopy(config or {})

    def run_config(self) -> dict:
        return copy.deepcopy(self._config)

    def log(self, metrics: dict[str, float], *, step: int) -> None:
        pass

    def log_artifact(self, *, name, type, uri, metadata=None, aliases=None) -> None:
        pass

    def use_artifact(self, *, name, type, uri, metadata=None) -> None:
        pass

    def log_table(self, key, *, columns, rows, step) -> None:
        pass

    def log_lines(self, key, *, xs, lines, title, x_name, step) -> None:
        pass

    def reference(self) -> dict:
        return {}

    def finish(self, *, exit_code: int = 0) -> None:
        pass


class WandbTracker:
    """A `Tracker` over one started `wandb` run."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def run_config(self) -> dict:
        # run.config already holds Launch/sweep overrides merged into the defaults;
        # dict() drops W&B's private "_wandb" key, deepcopy keeps callers off its internals.
        return copy.deepcopy(dict(self.run.config))

    def log(self, metrics: dict[str, float], *, step: int) -> None:
        self.run.log({**metrics, STEP_METRIC: step})

    def log_artifact(self, *, name, type, uri, metadata=None, aliases=None) -> None:
        self.run.log_artifact(_artifact(name, type, uri, metadata), aliases=aliases)

    def log_table(self, key, *, columns, rows, step) -> None:
        """`rows` of plain values; a PIL image cell is logged as a picture (wandb.Image)."""
        import wandb

        rows = [[_media(cell) for cell in row] for row in rows]
        self.run.log({key: wandb.Table(columns=columns, data=rows), STEP_METRIC: step})

    def log_lines(self, key, *, xs, lines, title, x_name, step) -> None:
        """A line plot: one line per name in `lines`, each over `xs` (wandb.plot.line_series,
        whose table is logged with it)."""
        import wandb

        chart = wandb.plot.line_series(
            xs=xs, ys=list(lines.values()), keys=list(lines), title=title, xname=x_name
        )
        self.run.log({key: chart, STEP_METRIC: step})

    def use_artifact(self, *, name, type, uri, metadata=None) -> None:
        artifact = _artifact(name, type, uri, metadata)
        if not self.run.offline:
            self.run.use_artifact(artifact)
            return
        # wandb refuses use_artifact offline. For a new artifact, online use_artifact is
        # exactly this call; offline it is written to the run file and `wandb sync` replays
        # it (wandb-core's saver marks it used after commit), so the lineage survives.
        self.run._log_artifact(artifact, is_user_created=True, use_after_commit=True)

    def reference(self) -> dict:
        """Where to find this run: its id, project and group, and its URL (online) or the
        directory `wandb sync` uploads (offline). The model registry records it."""
        run = self.run
        where = {"directory": run.sync_dir} if run.offline else {"url": run.url}
        return {"id": run.id, "project": run.project, "group": run.group or "", **where}

    def finish(self, *, exit_code: int = 0) -> None:
        offline = self.run.offline
        self.run.finish(exit_code=exit_code)
        if offline:
            # Offline, finish() can return before wandb-core has written the run file (seen
            # with wandb 0.31: a 7-byte file, complete a millisecond later). Tearing the
            # session down waits for wandb-core to exit, so the files are whole on return,
            # ready to be copied for a later `wandb sync`. A next run starts a new session.
            import wandb

            wandb.teardown()


def start_tracker(
    *,
    enabled: bool,
    project: str,
    config: dict,
    job_type: str,
    name: str | None = None,
    directory: str | None = None,
    wandb_secret: str | None = None,
) -> Tracker:
    """A W&B run when `enabled`, else a `NullTracker`; `wandb_secret` is a Secret Manager
    version holding the API key, put in this process's environment for wandb to find."""
    if not enabled:
        return NullTracker(config)
    if wandb_secret:
        from trainers.common.secrets import read_secret

        # Secrets are often stored with a trailing newline, which W&B would reject.
        os.environ["WANDB_API_KEY"] = read_secret(wandb_secret).strip()
    import wandb

    if directory:
        os.makedirs(directory, exist_ok=True)  # wandb falls back to a temp dir otherwise
    run = wandb.init(
        project=project,
        config=config,
        job_type=job_type,
        name=name,
        dir=directory,
        group=os.environ.get("WANDB_RUN_GROUP") or None,
        mode=_mode(),
    )
    run.define_metric(STEP_METRIC)
    run.define_metric("*", step_metric=STEP_METRIC)
    return WandbTracker(run)


def _mode() -> str | None:
    """Offline when there is no key to go online with; otherwise wandb's own choice
    (WANDB_MODE, e.g. "disabled", still wins)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") == "disabled":
        return None
    return "offline"


def _media(cell: Any) -> Any:
    # A PIL image exists only once PIL is imported: look for it rather than import it.
    pil = sys.modules.get("PIL.Image")
    if pil is not None and isinstance(cell, pil.Image):
        import wandb

        return wandb.Image(cell)
    return cell


def _artifact(name: str, type: str, uri: str, metadata: dict | None) -> Any:
    """A draft artifact: gs:// (and /gcs/ FUSE) paths by reference, local paths by content."""
    import wandb

    artifact = wandb.Artifact(name, type=type, metadata=metadata)
    if uri.startswith(FUSE_ROOT):
        # Copying a mounted checkpoint into W&B storage would upload gigabytes it already has.
        uri = "gs://" + uri[len(FUSE_ROOT) :]
    if uri.startswith("gs://"):
        # checksum=False records the URI without listing the bucket: no storage.objects.list
        # permission needed and no minutes-long walk over a dataset's shards.
        leaf = posixpath.basename(uri.rstrip("/")) or name
        artifact.add_reference(uri, name=leaf, checksum=False)
    elif os.path.isdir(uri):
        artifact.add_dir(uri)
    elif os.path.isfile(uri):
        artifact.add_file(uri)
    else:
        raise FileNotFoundError(f"artifact {name!r}: nothing at {uri!r} to log")
    return artifact
