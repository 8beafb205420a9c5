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

# Modules that add more subcommands: each has `register(command)`, where
# `command(name, help, example)` returns the new subparser; a subparser sets its `handler`
# (`parser.set_defaults(handler=...)`). They must import nothing heavy at module level.
COMMAND_GROUPS: tuple = ()

EXAMPLES = {
    "pipelines": "example:\n  liftoff pipelines",
    "run": "example:\n  liftoff run llm-finetune --preset debug --param max_steps=200 --json",
    "compile": "example:\n  liftoff compile llm-finetune --hardware a100x8 --spot -o lf.yaml",
    "submit": (
        "example:\n  liftoff submit llm-finetune --project my-proj --region us-central1 \\\n"
        "    --pipeline-root gs://my-bucket/pipelines --service-account "
        "trainer@my-proj.iam.gserviceaccount.com \\\n"
        "    --param data=gs://my-bucket/data/train.jsonl --param preset=qwen2.5-0.5b --wait\n\n"
        "options also come from LIFTOFF_PROJECT, LIFTOFF_REGION, LIFTOFF_PIPELINE_ROOT,\n"
        "LIFTOFF_SERVICE_ACCOUNT, LIFTOFF_API_ENDPOINT and a [vertex] table in ./liftoff.toml"
    ),
    "serve": "examples:\n  liftoff serve llm-finetune@latest --port 8080\n"
    "  liftoff serve outputs/model",
    "models": "example:\n  liftoff models",
    "hardware": "example:\n  liftoff hardware",
}


def _command(sub, name: str, help: str, example: str | None = None) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=example or EXAMPLES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _hardware_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hardware", help="training profile (liftoff hardware; default per pipeline)")
    p.add_argument("--nodes", type=int, help="training nodes (multi-node DDP)")
    spot = p.add_mutually_exclusive_group()
    spot.add_argument("--spot", action="store_true", help="Spot VMs (preemptible, cheaper)")
    spot.add_argument("--flex-start", action="store_true", help="DWS flex-start scheduling")
    p.add_argument("--serving-hardware", default="l4x1", help="deploy profile (default l4x1)")


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("pipeline", help="pipeline name (liftoff pipelines)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="trainer config override, added to the overrides parameter",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="liftoff", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(sub, "pipelines", "list the pipelines")

    run = _command(sub, "run", "run a pipeline on the local target")
    _run_options(run)
    run.add_argument("--preset", help="trainer preset (sets the preset parameter)")
    run.add_argument("--workdir", default=".liftoff", help="runs, artifacts, registry")
    run.add_argument("--json", action="store_true", help="end with a JSON summary line")

    comp = _command(sub, "compile", "compile a pipeline for Vertex AI (KFP IR YAML)")
    comp.add_argument("pipeline")
    _hardware_options(comp)
    comp.add_argument("-o", "--output", help="file to write (default: PIPELINE.yaml)")

    submit = _command(sub, "submit", "submit a pipeline run to Vertex AI Pipelines")
    _run_options(submit)
    _hardware_options(submit)
    for flag in ("--project", "--region", "--pipeline-root", "--service-account"):
        submit.add_argument(flag)
    submit.add_argument("--api-endpoint", help="Vertex API endpoint (http:// loopback: tests)")
    submit.add_argument("--no-cache", action="store_true", help="rerun every step")
    submit.add_argument("--experiment", help="Vertex AI experiment to add the run to")
    submit.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    submit.add_argument("--dry-run", action="store_true", help="print the request, send nothing")
    submit.add_argument("--wait", action="store_true", help="wait for the run to finish")

    serve = _command(sub, "serve", "serve a model directory or a registered model locally")
    serve.add_argument("model", help="MODEL_DIR or NAME[@VERSION|@ALIAS]")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workdir", default=".liftoff", help="where the registry lives")

    models = _command(sub, "models", "list the local model registry")
    models.add_argument("--workdir", default=".liftoff")
    _command(sub, "hardware", "list the hardware profiles")
    for group in COMMAND_GROUPS:
        group.register(functools.partial(_command, sub))
    return p


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
