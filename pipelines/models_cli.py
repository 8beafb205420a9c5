"""`liftoff serve` and `liftoff models`: the prediction server for a model, and the local model
registry. Registered in pipelines.cli's COMMAND_GROUPS; imports nothing heavy until a command
runs.

    liftoff models                                  # every version: aliases, metrics, deploy check
    liftoff models show llm-finetune@latest         # metrics, lineage, W&B run, deploy checks
    liftoff models alias llm-finetune@3 prod        # prod now names version 3
    liftoff models alias llm-finetune@3 prod --delete
    liftoff serve llm-finetune@prod --port 8080     # on 127.0.0.1 unless --host says otherwise
"""

from __future__ import annotations

import argparse
import json
import os

EXAMPLES = {
    "serve": "examples:\n  liftoff serve llm-finetune@latest --port 8080\n"
    "  liftoff serve outputs/model --host 0.0.0.0     # reachable from other machines",
    "models": "examples:\n" + "\n".join(__doc__.split("\n\n")[1].splitlines()[:4]),
    "show": "example:\n  liftoff models show llm-finetune@latest --json",
    "alias": "examples:\n  liftoff models alias llm-finetune@3 prod\n"
    "  liftoff models alias llm-finetune@3 prod --delete\n"
    "  liftoff models alias llm-finetune@2 latest      # roll back what `latest` serves",
}
WORKDIR_HELP = "the liftoff run workdir whose registry/ this is (default .liftoff)"
# The listing's columns: the gate metrics of llm-finetune and vlm-ddp and their losses.
SUMMARY_METRICS = ("exact_match", "perplexity", "vqa_exact_match", "caption_loss")


def register(command) -> None:
    serve = command("serve", "serve a model directory or a registered model", EXAMPLES["serve"])
    serve.add_argument("model", help="MODEL_DIR, gs://..., or NAME[@VERSION|@ALIAS]")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for all)",
    )
    serve.add_argument("--workdir", default=".liftoff", help=WORKDIR_HELP)
    serve.set_defaults(handler=serve_model)

    models = command("models", "the local model registry", EXAMPLES["models"])
    models.add_argument("--workdir", default=".liftoff", help=WORKDIR_HELP)
    models.set_defaults(handler=list_models)
    sub = models.add_subparsers(dest="models_command", metavar="COMMAND")
    _sub(sub, "list", "every registered version (the default)", EXAMPLES["models"]).set_defaults(
        handler=list_models
    )
    show = _sub(sub, "show", "one version: metrics, lineage, W&B run, deploy checks")
    show.add_argument("ref", metavar="NAME[@VERSION|@ALIAS]", help="the version to show")
    show.add_argument("--json", action="store_true", help="the whole record as JSON")
    show.set_defaults(handler=show_model)
    alias = _sub(sub, "alias", "point an alias at a version, or delete it")
    alias.add_argument("ref", metavar="NAME@VERSION", help="the version (or NAME@ALIAS)")
    alias.add_argument("alias", help="the alias, e.g. prod; `latest` may be moved, not deleted")
    alias.add_argument("--delete", action="store_true", help="remove the alias from the version")
    alias.set_defaults(handler=alias_model)


def _sub(sub, name: str, help: str, example: str | None = None) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=example or EXAMPLES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # SUPPRESS: given after the subcommand it wins; not given, the group's value stands.
    parser.add_argument("--workdir", default=argparse.SUPPRESS, help=WORKDIR_HELP)
    return parser


def _registry(args):
    from serving.registry import LocalRegistry

    return LocalRegistry(os.path.join(args.workdir, "registry"))


def serve_model(args) -> int:
    from serving.__main__ import main as serve_main

    model = args.model
    if not (os.path.isdir(model) or model.startswith(("gs://", "/gcs/"))):
        version = _registry(args).resolve(model)
        print(f"serving {version.ref} ({', '.join(version.aliases) or 'no aliases'})", flush=True)
        model = version.model_dir
    return serve_main(["--model", model, "--port", str(args.port), "--host", args.host])


def list_models(args) -> int:
    versions = _registry(args).versions()
    if not versions:
        print(f"no models registered in {args.workdir}/registry (liftoff run registers them)")
        return 0
    print(f"{'MODEL':<32} {'ALIASES':<16} {'CREATED':<21} {'METRICS':<36} DEPLOY CHECK")
    for v in versions:
        metrics = " ".join(f"{k}={v.metrics[k]:.3f}" for k in SUMMARY_METRICS if k in v.metrics)
        check = v.deployments[-1]["checked_at"] if v.deployments else "-"
        print(f"{v.ref:<32} {','.join(v.aliases) or '-':<16} {v.created:<21} {metrics:<36} {check}")
    return 0


def show_model(args) -> int:
    import dataclasses

    version = _registry(args).resolve(args.ref)
    if args.json:
        print(json.dumps({**dataclasses.asdict(version), "ref": version.ref}, sort_keys=True))
        return 0
    print("\n".join(describe(version)))
    return 0


def alias_model(args) -> int:
    registry = _registry(args)
    if args.delete:
        version = registry.delete_alias(args.ref, args.alias)
        print(f"{args.alias} removed from {version.ref}")
    else:
        version = registry.set_alias(args.ref, args.alias)
        print(f"{args.alias} -> {version.ref}")
    print(f"{version.ref} aliases: {', '.join(version.aliases) or 'none'}")
    return 0


def describe(version) -> list[str]:
    """A version, for a person: what it is, where it came from, how its checks went."""
    lineage = {k: v for k, v in version.lineage.items() if k != "wandb_run"}
    lines = [
        f"{version.ref} ({', '.join(version.aliases) or 'no aliases'})",
        f"  created:  {version.created}",
        f"  model:    {version.model_dir}",
        f"  metrics:  {_pairs(version.metrics, number=True) or '-'}",
        f"  labels:   {_pairs(version.labels) or '-'}",
        f"  lineage:  {_pairs(lineage) or '-'}",
        f"  W&B run:  {_wandb(version.lineage.get('wandb_run') or {})}",
        f"  deploy checks: {len(version.deployments) or 'none'}",
    ]
    return lines + [f"    {_check(check)}" for check in version.deployments]


def _check(check: dict) -> str:
    from serving.local import brief

    answers = zip(check.get("instances", []), check.get("predictions", []), strict=False)
    state = "healthy" if check.get("healthy") else "unhealthy"
    shown = "; ".join(f"{brief(i)} -> {p!r}" for i, p in answers)
    return f"{check.get('checked_at', '?')} {check.get('target', '')} {state}: {shown}"


def _pairs(values: dict, *, number: bool = False) -> str:
    def shown(value) -> str:
        return f"{value:.4g}" if number and isinstance(value, int | float) else str(value)

    return ", ".join(f"{k}={shown(v)}" for k, v in values.items())


def _wandb(run: dict) -> str:
    if not run:
        return "- (the trainer logged to no W&B run)"
    where = run.get("url") or (
        f"offline, {run['directory']} (upload: wandb sync {run['directory']})"
        if run.get("directory")
        else "-"
    )
    group = f", group {run['group']}" if run.get("group") else ""
    return f"{run.get('id', '?')} in project {run.get('project', '?')}{group}: {where}"
