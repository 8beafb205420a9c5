"""The `liftoff` commands: each turns parsed arguments into calls of library functions and prints
the result. Raise ValueError for bad input (exit 2) and RuntimeError for failures (exit 1).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
import time

from pipelines.hardware import get_profile


def pipelines(args) -> int:
    from pipelines.catalog import summaries

    for name, summary in summaries():
        print(f"{name:<16} {summary}")
    return 0


def hardware(args) -> int:
    from pipelines.hardware import table

    print("\n".join(table()))
    return 0


def run(args) -> int:
    from pipelines.local_run import run_local

    params = _params(args, _declared(args.pipeline))
    if args.preset:
        params["preset"] = args.preset
    params.setdefault("model_labels", {}).update(_git_label())
    result = run_local(args.pipeline, params=params, workdir=args.workdir)
    _print_summary(result)
    if args.json:
        print(json.dumps(result.to_json(), sort_keys=True))
    return 0 if result.status == "SUCCEEDED" else 1


def compile(args) -> int:
    from pipelines.compile import compile_pipeline

    training, serving = _profiles(args)
    path = args.output or f"{args.pipeline}.yaml"
    started = time.monotonic()
    compile_pipeline(args.pipeline, hardware=training, serving=serving, path=path)
    took = time.monotonic() - started
    print(f"compiled {args.pipeline} for {training.name} in {took:.1f} s: {path}")
    return 0


def submit(args) -> int:
    from pipelines import submit as vertex
    from pipelines.compile import compile_pipeline
    from pipelines.settings import resolve_settings

    settings = resolve_settings(
        {
            "project": args.project,
            "region": args.region,
            "pipeline_root": args.pipeline_root,
            "service_account": args.service_account,
            "api_endpoint": args.api_endpoint,
        }
    )
    training, serving = _profiles(args)
    # The suffix keeps runs submitted within the same second (a sweep) from colliding.
    job_id = (
        f"{args.pipeline}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"
    )
    params = _params(args, _declared(args.pipeline))
    params = _vertex_defaults(params, settings=settings, job_id=job_id)
    labels = {**_pairs(args.label, "--label"), "liftoff-pipeline": args.pipeline}
    with tempfile.TemporaryDirectory(prefix="liftoff-submit-") as tmp:
        template = compile_pipeline(
            args.pipeline, hardware=training, serving=serving, path=os.path.join(tmp, "p.yaml")
        )
        common = {
            "settings": settings,
            "display_name": job_id,
            "job_id": job_id,
            "parameter_values": params,
            "labels": labels,
            "enable_caching": False if args.no_cache else None,
        }
        if args.dry_run:
            print(json.dumps(vertex.dry_run_body(template, **common), indent=2, sort_keys=True))
            return 0
        result = _call_vertex(
            vertex.submit, template, experiment=args.experiment, wait=args.wait, **common
        )
    print(f"submitted {result.resource_name}")
    print(f"console: {result.console_url}")
    if result.state:
        print(f"state: {result.state}")
    return 0


def _call_vertex(submit, *args, **kwargs):
    """`submit(...)` with Google's API and auth errors (403, 409, no credentials) as one line."""
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    try:
        return submit(*args, **kwargs)
    except (GoogleAPIError, GoogleAuthError) as err:
        raise RuntimeError(f"Vertex AI: {' '.join(str(err).split())}") from None


def serve(args) -> int:
    from serving.__main__ import main as serve_main

    return serve_main(["--model", _model_dir(args.model, args.workdir), "--port", str(args.port)])


# The registry columns: the gate metrics of llm-finetune and vlm-ddp and their losses.
SUMMARY_METRICS = ("exact_match", "perplexity", "vqa_exact_match", "caption_loss")


def models(args) -> int:
    from serving.registry import LocalRegistry

    versions = LocalRegistry(os.path.join(args.workdir, "registry")).versions()
    if not versions:
        print(f"no models registered in {args.workdir}/registry (liftoff run registers them)")
        return 0
    print(f"{'MODEL':<32} {'ALIASES':<16} {'CREATED':<21} {'METRICS':<36} DEPLOY CHECK")
    for v in versions:
        metrics = " ".join(f"{k}={v.metrics[k]:.3f}" for k in SUMMARY_METRICS if k in v.metrics)
        check = v.deployments[-1]["checked_at"] if v.deployments else "-"
        print(f"{v.ref:<32} {','.join(v.aliases) or '-':<16} {v.created:<21} {metrics:<36} {check}")
    return 0


def _model_dir(ref: str, workdir: str) -> str:
    if os.path.isdir(ref) or ref.startswith(("gs://", "/gcs/")):
        return ref
    from serving.registry import LocalRegistry

    return LocalRegistry(os.path.join(workdir, "registry")).resolve(ref).model_dir


def _declared(name: str) -> dict[str, str]:
    from pipelines.compile import vertex_pipeline
    from pipelines.params import declared_params

    return declared_params(vertex_pipeline(name, hardware=get_profile("cpu")))


def _params(args, declared: dict[str, str]) -> dict:
    from pipelines.params import parse_params

    params = parse_params(args.param, declared)
    if args.set:
        params["overrides"] = [*params.get("overrides", []), *args.set]
    return params


def _profiles(args):
    from pipelines.catalog import get_pipeline

    scheduling = "SPOT" if args.spot else "FLEX_START" if args.flex_start else None
    name = args.hardware or get_pipeline(args.pipeline).DEFAULT_HARDWARE
    training = get_profile(name).with_options(nodes=args.nodes, scheduling=scheduling)
    return training, get_profile(args.serving_hardware)


def _vertex_defaults(params: dict, *, settings, job_id: str) -> dict:
    """What only submit knows: the job's output directory, account and labels."""
    defaults = {
        "base_output_dir": f"{settings.pipeline_root.rstrip('/')}/{job_id}/train",
        "service_account": settings.service_account,
    }
    labels = {"liftoff_run": job_id, **_git_label(), **params.get("model_labels", {})}
    return {**defaults, **params, "model_labels": labels}


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} {item!r}: expected KEY=VALUE")
        pairs[key] = value
    return pairs


def _git_label() -> dict[str, str]:
    """The commit being run, when known (Cloud Build sets LIFTOFF_GIT_SHA)."""
    sha = os.environ.get("LIFTOFF_GIT_SHA")
    if not sha:
        try:
            done = subprocess.run(
                ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
            )
            sha = done.stdout.strip() if done.returncode == 0 else ""
        except OSError:
            sha = ""
    return {"git_sha": sha[:12]} if sha else {}


def _print_summary(result) -> None:
    print(f"\n{result.pipeline} {result.status} in {result.wall_s:.0f} s (run {result.run_id})")
    if result.error:
        print(f"  error: {result.error}")
    if result.metrics:
        print("  metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(result.metrics.items())))
    if result.model_uri:
        print(f"  model: {result.model_uri}")
    if result.registry:
        print(f"  registered: {result.registry['ref']} ({', '.join(result.registry['aliases'])})")
    elif result.status == "SUCCEEDED":
        print(f"  not registered: gate metric {result.gate:.4g} is below the threshold")
    if result.deploy_check:
        pairs = zip(
            result.deploy_check["instances"], result.deploy_check["predictions"], strict=True
        )
        from serving.local import brief

        print("  deploy check: healthy; " + "; ".join(f"{brief(i)} -> {p!r}" for i, p in pairs))
    for path in result.wandb_dirs:
        print(f"  W&B run: {path}")
