"""`liftoff launch ...`: W&B Launch onto Vertex AI (pipelines.launch). Registered in
pipelines.cli's COMMAND_GROUPS; imports nothing heavy until a command runs.

    liftoff launch queue-config --hardware a100x8 --spot --service-account SA \\
        --staging-bucket gs://B/launch -o queue.yaml
    liftoff launch job create llm --image us-docker.pkg.dev/P/liftoff/trainer:1
    liftoff launch agent --queue vertex-a100 --entity TEAM --wandb-secret SECRET_VERSION
    liftoff launch submit llm --queue vertex-a100 --preset qwen2.5-0.5b --set optim.lr=1e-4
"""

from __future__ import annotations

import argparse
import json

from pipelines.launch.jobs import DEFAULT_PROJECT

EXAMPLE = "examples:\n" + "\n".join(__doc__.split("\n\n")[1].splitlines()[0:])
EXAMPLES = {
    "queue-config": "example:\n"
    "  liftoff launch queue-config --hardware a100x8 --nodes 2 --spot \\\n"
    "    --service-account trainer@my-proj.iam.gserviceaccount.com \\\n"
    "    --staging-bucket gs://my-proj-liftoff/launch -o vertex-a100x8.yaml",
    "agent": "example:\n  liftoff launch agent --queue vertex-a100x8 --entity my-team \\\n"
    "    --wandb-secret projects/my-proj/secrets/wandb-agent-key/versions/latest\n\n"
    "--wandb-secret may also come from LIFTOFF_WANDB_SECRET (never the key itself)",
    "job": "example:\n  liftoff launch job create llm --image "
    "us-docker.pkg.dev/my-proj/liftoff/trainer:1.4 --entity my-team",
    "submit": "example:\n"
    "  liftoff launch submit llm --queue vertex-a100x8 --preset qwen2.5-0.5b \\\n"
    "    --set data.train=gs://my-proj-liftoff/data/train.jsonl --set optim.lr=1e-4",
}


def register(command) -> None:
    launch = command("launch", "launch trainers through W&B Launch onto Vertex AI", EXAMPLE)
    sub = launch.add_subparsers(dest="launch_command", required=True, metavar="COMMAND")
    _queue_config_parser(_sub(sub, "queue-config", "the Vertex queue config from a profile"))
    agent = _sub(sub, "agent", "run W&B's launch agent with liftoff's Vertex runner")
    agent.add_argument("--queue", action="append", required=True, help="queue (repeatable)")
    agent.add_argument("--entity", required=True, help="W&B entity (team) of the queues")
    agent.add_argument("--max-jobs", type=int, default=1, help="runs at once (-1: no limit)")
    agent.add_argument("--wandb-secret", help="Secret Manager version of the agent's W&B key")
    agent.set_defaults(handler=run_agent)
    job = _sub(sub, "job", "W&B Launch jobs of the trainers")
    create = job.add_subparsers(dest="job_command", required=True, metavar="COMMAND")
    create = _sub(create, "create", "create the trainer's image job (with its form)", "job")
    create.add_argument("trainer", help="llm | vlm")
    create.add_argument("--image", required=True, help="the trainer image URI")
    _wandb_target(create)
    create.set_defaults(handler=create_job)
    submit = _sub(sub, "submit", "enqueue a trainer run on a launch queue")
    submit.add_argument("trainer", help="llm | vlm")
    submit.add_argument("--queue", required=True)
    submit.add_argument("--preset", required=True, help="trainer preset")
    submit.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    _wandb_target(submit)
    submit.set_defaults(handler=submit_run)


def _sub(sub, name: str, help: str, example: str | None = None) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=EXAMPLES[example or name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _queue_config_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hardware", required=True, help="training profile (liftoff hardware)")
    p.add_argument("--nodes", type=int, help="training nodes (multi-node DDP)")
    spot = p.add_mutually_exclusive_group()
    spot.add_argument("--spot", action="store_true", help="Spot VMs (preemptible, cheaper)")
    spot.add_argument("--flex-start", action="store_true", help="DWS flex-start scheduling")
    p.add_argument("--service-account", required=True, help="the trainer jobs' identity")
    p.add_argument("--staging-bucket", required=True, help="gs://BUCKET[/PATH]: job outputs")
    p.add_argument("--region", default="us-central1", help="Vertex AI region (us-central1)")
    p.add_argument("--wandb-secret", default="", help="trainers' W&B key (default: the agent's)")
    p.add_argument("-o", "--output", help="write the config to this file (YAML or .json)")
    p.set_defaults(handler=queue_config)


def _wandb_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--entity", help="W&B entity (default: WANDB_ENTITY, else the key's own)")
    p.add_argument("--project", default=DEFAULT_PROJECT, help="W&B project (default: liftoff)")


def queue_config(args) -> int:
    from pipelines.hardware import get_profile
    from pipelines.launch.queue_config import queue_config, render

    scheduling = "SPOT" if args.spot else "FLEX_START" if args.flex_start else None
    profile = get_profile(args.hardware).with_options(nodes=args.nodes, scheduling=scheduling)
    config = queue_config(
        profile,
        service_account=args.service_account,
        staging_bucket=args.staging_bucket,
        region=args.region,
        wandb_secret=args.wandb_secret,
    )
    as_json = bool(args.output and args.output.endswith(".json"))
    text = json.dumps(config, indent=2) + "\n" if as_json else render(config)
    if not args.output:
        print(text, end="")
        return 0
    with open(args.output, "w") as f:
        f.write(text)
    print(f"wrote the {profile.name} queue config to {args.output}")
    return 0


def run_agent(args) -> int:
    import os

    from pipelines.launch.agent import SECRET_ENV, run_agent

    secret = args.wandb_secret or os.environ.get(SECRET_ENV, "")
    if not secret:
        raise ValueError(f"--wandb-secret (or {SECRET_ENV}) is required: the agent's W&B key")
    run_agent(queues=args.queue, entity=args.entity, wandb_secret=secret, max_jobs=args.max_jobs)
    return 0


def create_job(args) -> int:
    from pipelines.launch.jobs import create_job

    name = create_job(args.trainer, image=args.image, entity=args.entity, project=args.project)
    print(f"job {name}: launch it from the W&B UI or with `liftoff launch submit`")
    return 0


def submit_run(args) -> int:
    from pipelines.launch.jobs import submit

    result = submit(
        args.trainer,
        queue=args.queue,
        preset=args.preset,
        sets=args.set,
        entity=args.entity,
        project=args.project,
    )
    print(f"queued {result['item']} on {result['queue']}: {json.dumps(result['run_config'])}")
    return 0
