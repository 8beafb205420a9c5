"""The help of the `liftoff` command line: one text for each option many commands share,
`liftoff --version`, and `liftoff run [PIPELINE] --help` with the pipeline's parameters and
presets.

    fill_help(parser)        # every option without a help text of its own gets SHARED_HELP's
    undocumented(parser)     # ["liftoff x --flag", ...]: what still has none (a test keeps it [])
"""

from __future__ import annotations

import argparse

SHARED_HELP = {
    "--project": "Google Cloud project (or LIFTOFF_PROJECT, liftoff.toml [vertex])",
    "--region": "Vertex AI region, e.g. us-central1 (or LIFTOFF_REGION, liftoff.toml)",
    "--pipeline-root": "gs:// root of the runs' artifacts (or LIFTOFF_PIPELINE_ROOT, liftoff.toml)",
    "--service-account": "the identity runs run as (or LIFTOFF_SERVICE_ACCOUNT, liftoff.toml)",
    "--api-endpoint": "Vertex API endpoint; http:// only on loopback (emulators, tests)",
    "--param": "a pipeline parameter (repeatable; liftoff run PIPELINE --help lists them)",
    "--set": "a trainer config override (repeatable), added to the overrides parameter",
    "--label": "a label of the run (repeatable; GCP label rules)",
    "--limit": "show at most this many (newest first)",
    "--json": "print JSON for scripts",
    "--target": "where the run is: on Vertex AI, or local (recorded under --workdir)",
    "--workdir": "where local runs, artifacts and the registry live (default .liftoff)",
    "--queue": "the W&B Launch queue",
    "--cron": '"[TZ=Area/City] MIN HOUR DAY MONTH WEEKDAY"',
    "pipeline": "pipeline name (liftoff pipelines)",
    "pipelines": "pipeline names, or compiled FILE.yaml templates",
}
MAX_DEFAULT = 60  # characters of a default shown (the VLM's sample images are base64)
RUN_EXAMPLES = """examples:
  liftoff run llm-finetune --preset debug
  liftoff run llm-finetune --config examples/llm/recipe.yaml --param data=examples/llm/chat.jsonl
  liftoff run vlm-ddp --preset debug -v              # every line kfp.local prints, as today"""


def fill_help(parser: argparse.ArgumentParser) -> None:
    for action in _actions(parser):
        if not action.help:
            name = action.option_strings[-1] if action.option_strings else action.dest
            action.help = SHARED_HELP.get(name) or SHARED_HELP.get(action.metavar or "")


def undocumented(parser: argparse.ArgumentParser, path: str = "liftoff") -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += undocumented(sub, f"{path} {name}")
        elif not action.help or action.help == argparse.SUPPRESS:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        else:
            yield action


class Version(argparse.Action):
    """`liftoff --version`: the installed distribution's version and the commit, when known."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs) -> None:
        kwargs.setdefault("help", "print liftoff's version and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        from pipelines.images import commit_sha

        try:
            text = f"liftoff {version('liftoff')}"
        except PackageNotFoundError:
            text = "liftoff (not installed)"
        sha = commit_sha()
        print(text + (f" (commit {sha[:12]})" if sha else ""))
        parser.exit()


class RunHelp(argparse.Action):
    """`liftoff run [PIPELINE] --help`: the usual help, then the parameters (with this
    pipeline's defaults) and the presets."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs) -> None:
        kwargs.setdefault("help", "this help; after PIPELINE, with its parameters and presets")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.epilog = "\n\n".join([RUN_EXAMPLES, *pipeline_help(namespace.pipeline)])
        parser.print_help()
        parser.exit()


def pipeline_help(name: str | None) -> list[str]:
    """The parameters and presets of pipeline `name` (of every pipeline when None)."""
    from pipelines.catalog import PIPELINES, get_pipeline
    from pipelines.presets import preset_lines

    pipeline = get_pipeline(name) if name else next(iter(PIPELINES.values()))
    whose = f"{name}'s" if name else f"{pipeline.name}'s defaults; other pipelines' differ"
    params = [f"parameters (--param NAME=VALUE; {whose}):"]
    for p in pipeline.parameters():
        default = repr(p.default)
        default = default if len(default) <= MAX_DEFAULT else default[: MAX_DEFAULT - 3] + "..."
        params.append(f"  {p.name:<18} {p.description} (default {default})")
    presets = [f"  {line}" if name else line for line in preset_lines(name)]
    return ["\n".join(params), "presets (--preset):\n" + "\n".join(presets)]
