"""`liftoff templates push/list`: compiled pipeline templates in an Artifact Registry KFP
repository (pipelines/templates.py). Registered in pipelines.cli's COMMAND_GROUPS; imports
nothing heavy until a command runs.

    liftoff templates push llm-finetune --hardware a100x1 --tag reviewed
    liftoff templates push llm-finetune.yaml vlm-ddp.yaml      # compiled already (Cloud Build)
    liftoff templates list llm-finetune
"""

from __future__ import annotations

import argparse
import os
import tempfile

EXAMPLE = (
    "examples:\n"
    "  liftoff templates push llm-finetune --hardware a100x1 --tag reviewed\n"
    "  liftoff templates push llm-finetune.yaml vlm-ddp.yaml    # compiled already\n"
    "  liftoff templates list llm-finetune\n\n"
    "the repository: --kfp-host, or https://REGION-kfp.pkg.dev/PROJECT/liftoff-pipelines\n"
    "(--project, --region, --kfp-repo; also LIFTOFF_* and liftoff.toml [vertex])"
)


def register(command) -> None:
    from pipelines import cli

    templates = command("templates", "pipeline templates in Artifact Registry", EXAMPLE)
    sub = templates.add_subparsers(dest="templates_command", required=True, metavar="COMMAND")
    push = cli._command(
        sub, "push", "compile and upload, tagged with the commit and latest", EXAMPLE
    )
    push.add_argument("pipelines", nargs="+", metavar="PIPELINE|FILE.yaml")
    push.add_argument("--tag", action="append", default=[], help="another tag (repeatable)")
    push.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    push.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    compile_options(push)
    _repository(push)
    push.set_defaults(handler=templates_push)
    listing = cli._command(sub, "list", "template versions and their tags", EXAMPLE)
    listing.add_argument("pipeline", nargs="?")
    _repository(listing)
    listing.set_defaults(handler=templates_list)


def compile_options(p: argparse.ArgumentParser) -> None:
    """What a pipeline is compiled with (hardware, images, web access): push and schedule."""
    from pipelines import cli

    cli._hardware_options(p)
    cli._image_options(p)
    p.add_argument(
        "--enable-web-access", action="store_true", help="interactive shells into training VMs"
    )


def _repository(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kfp-host", help="the KFP repository's URL")
    p.add_argument("--kfp-repo", help="its name (default liftoff-pipelines)")
    p.add_argument("--project")
    p.add_argument("--region")


def templates_push(args) -> int:
    from pipelines.templates import default_tags, push_template, template_host

    host = template_host(_repository_flags(args))
    tags = default_tags(args.tag)
    with tempfile.TemporaryDirectory(prefix="liftoff-push-") as tmp:
        paths = [_template_file(name, args, directory=tmp) for name in args.pipelines]
        for path in paths:
            pushed = push_template(path, host=host, tags=tags)
            print(f"pushed {pushed.ref.name} (tags {', '.join(tags)}): {pushed.uri}")
    return 0


def _template_file(name: str, args, *, directory: str) -> str:
    """A compiled file as it is, else the pipeline compiled with the command's options (its
    --param values the template's defaults)."""
    if name.endswith((".yaml", ".yml")):
        if not os.path.isfile(name):
            raise ValueError(f"{name}: no such file")
        return name
    from pipelines.runnable import compile_here

    compiled = argparse.Namespace(**{**vars(args), "pipeline": name})
    return compile_here(compiled, directory=directory, as_defaults=True).path


def templates_list(args) -> int:
    from pipelines.cron import user_zone
    from pipelines.run_view import when
    from pipelines.templates import list_templates, template_host

    host = template_host(_repository_flags(args))
    rows = list_templates(host, pipeline=args.pipeline)
    if not rows:
        print(f"no templates in {host} (liftoff templates push PIPELINE)")
        return 0
    print(f"{'PIPELINE':<16} {'VERSION':<20} {'CREATED':<24} TAGS")
    for row in rows:
        created = when(row["created"], zone=user_zone())
        version = row["version"][: len("sha256:") + 12]
        print(f"{row['pipeline']:<16} {version:<20} {created:<24} {', '.join(row['tags']) or '-'}")
    return 0


def _repository_flags(args) -> dict:
    return {name: getattr(args, name) for name in ("kfp_host", "kfp_repo", "project", "region")}
