"""`liftoff`: compile, run, submit and serve liftoff pipelines and models.

    liftoff pipelines                                   # what there is
    liftoff run llm-finetune --preset debug             # local target, end to end
    liftoff submit llm-finetune --project P --region us-central1 --pipeline-root gs://B/root

Every command's --help has an example. Heavy libraries are imported by the command that needs
them, so `liftoff --help` answers at once.
"""

from __future__ import annotations

import argparse
import functools
import sys

from pipelines import (
    cli_help,
    models_cli,
    presets,
    run_commands,
    schedule_commands,
    template_commands,
)
from pipelines.launch import commands as launch_commands

# Modules that add more subcommands: each has `register(command)`, where
# `command(name, help, example)` returns the new subparser; a subparser sets its `handler`
# (`parser.set_defaults(handler=...)`). They must import nothing heavy at module level.
COMMAND_GROUPS: tuple = (
    launch_commands,
    models_cli,
    template_commands,
    schedule_commands,
    run_commands,
    presets,
)

EXAMPLES = {
    "pipelines": "example:\n  liftoff pipelines",
    "run": "example:\n  liftoff run llm-finetune --preset debug --param max_steps=200 --json",
    "compile": (
        "examples:\n  liftoff compile llm-finetune --hardware a100x8 --spot -o lf.yaml\n"
        "  liftoff compile vlm-ddp --project my-proj --region us-central1 \\\n"
        "    --param preset=siglip-so400m-qwen2.5-1.5b -o vlm.yaml\n\n"
        "images: --trainer-image/--serving-image, LIFTOFF_*_IMAGE, the digests a build pinned,\n"
        "or REGION-docker.pkg.dev/PROJECT/liftoff/NAME:<commit> (--project, --region)"
    ),
    "submit": (
        "example:\n  liftoff submit llm-finetune --project my-proj --region us-central1 \\\n"
        "    --pipeline-root gs://my-bucket/pipelines --service-account "
        "trainer@my-proj.iam.gserviceaccount.com \\\n"
        "    --param data=gs://my-bucket/data/train.jsonl --param preset=qwen2.5-0.5b --wait\n\n"
        "options also come from LIFTOFF_PROJECT, LIFTOFF_REGION, LIFTOFF_PIPELINE_ROOT,\n"
        "LIFTOFF_SERVICE_ACCOUNT, LIFTOFF_API_ENDPOINT and a [vertex] table in ./liftoff.toml"
    ),
    "hardware": "example:\n  liftoff hardware",
}


def _command(
    sub, name: str, help: str, example: str | None = None, **options
) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=example or EXAMPLES.get(name),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **options,
    )


def _hardware_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hardware", help="training profile (liftoff hardware; default per pipeline)")
    p.add_argument("--nodes", type=int, help="training nodes (multi-node DDP)")
    spot = p.add_mutually_exclusive_group()
    spot.add_argument("--spot", action="store_true", help="Spot VMs (preemptible, cheaper)")
    spot.add_argument("--flex-start", action="store_true", help="DWS flex-start scheduling")
    p.add_argument("--timeout", help="the training job's limit, e.g. 36h or 7d (default 7d)")
    p.add_argument("--serving-hardware", default="l4x1", help="deploy profile (default l4x1)")


def _image_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trainer-image", help="trainer image (a digest or a version tag)")
    p.add_argument(
        "--serving-image", help="serving image for --serving-hardware (serving-gpu on GPUs)"
    )
    p.add_argument("--image-repo", help="Artifact Registry repository of the images (liftoff)")
    p.add_argument("--image-version", help="their tag in it (default: this commit's short sha)")


def _run_options(p: argparse.ArgumentParser, *, optional: bool = False) -> None:
    p.add_argument(
        "pipeline", nargs="?" if optional else None, help="pipeline name (liftoff pipelines)"
    )
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="trainer config override, added to the overrides parameter",
    )
    p.add_argument(
        "--config",
        metavar="RECIPE.yaml",
        help="a recipe: the trainer's config fields as YAML (python -m trainers.llm "
        "--print-config writes one); --preset, --param and --set override it",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="liftoff", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--version", action=cli_help.Version)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(sub, "pipelines", "list the pipelines")

    run = _command(sub, "run", "run a pipeline on the local target", add_help=False)
    run.add_argument("-h", "--help", action=cli_help.RunHelp)
    _run_options(run)
    run.add_argument("--preset", help="trainer preset (sets the preset parameter)")
    run.add_argument("--workdir", default=".liftoff", help="runs, artifacts, registry")
    run.add_argument("--json", action="store_true", help="end with a JSON summary line")
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show everything the steps print, as they print it (the run's logs/ keep it anyway)",
    )
    _print_config_option(run)

    comp = _command(sub, "compile", "compile a pipeline for Vertex AI (KFP IR YAML)")
    _run_options(comp)
    _hardware_options(comp)
    _image_options(comp)
    for flag in ("--project", "--region"):
        comp.add_argument(flag, help="where the images are (with --image-repo)")
    comp.add_argument("-o", "--output", help="file to write (default: PIPELINE.yaml)")

    submit = _command(sub, "submit", "submit a pipeline run to Vertex AI Pipelines")
    _run_options(submit, optional=True)
    submit.add_argument(
        "--template", help="run a pushed template instead: https://...-kfp.pkg.dev/P/R/NAME@TAG"
    )
    _hardware_options(submit)
    _image_options(submit)
    submit.add_argument(
        "--enable-web-access", action="store_true", help="interactive shells into training VMs"
    )
    for flag in ("--project", "--region", "--pipeline-root", "--service-account"):
        submit.add_argument(flag)
    submit.add_argument("--api-endpoint", help="Vertex API endpoint (http:// loopback: tests)")
    submit.add_argument("--no-cache", action="store_true", help="rerun every step")
    submit.add_argument("--experiment", help="Vertex AI experiment to add the run to")
    submit.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    submit.add_argument(
        "--dry-run", action="store_true", help="print the whole request, send nothing"
    )
    submit.add_argument("--wait", action="store_true", help="wait for the run to finish")
    _print_config_option(submit)

    _command(sub, "hardware", "list the hardware profiles")
    for group in COMMAND_GROUPS:
        group.register(functools.partial(_command, sub))
    cli_help.fill_help(p)
    return p


def _print_config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the trainer config the run would train with, as a recipe, and exit",
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        from pipelines import commands

        handler = getattr(commands, args.command.replace("-", "_"))
    try:
        return handler(args)
    except ValueError as err:  # bad input: a usage error
        print(f"liftoff {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as err:
        print(f"liftoff {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _one_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
