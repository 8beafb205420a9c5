"""The `liftoff` commands: each turns parsed arguments into calls of library functions and prints
the result. Raise ValueError for bad input (exit 2) and RuntimeError for failures (exit 1).
"""

from __future__ import annotations

import json
import secrets
import tempfile
import time

from pipelines.catalog import get_pipeline
from pipelines.hardware import get_profile
from pipelines.preflight import check_labels, check_params, check_reachable

# submit's options that say where a run goes (pipelines/settings.py).
SETTINGS = ("project", "region", "pipeline_root", "service_account", "api_endpoint")


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
    pipeline = get_pipeline(args.pipeline)
    params = _params(args, pipeline)
    if args.preset:
        params["preset"] = args.preset
    check_params(pipeline, params, target="local")
    if args.print_config:
        return _print_config(pipeline, params, command=f"liftoff run {args.pipeline}")
    params.setdefault("model_labels", {}).update(_git_label())
    from pipelines.local_run import run_local  # kfp and the components: only for a run
    from pipelines.progress import summary_lines

    result = run_local(args.pipeline, params=params, workdir=args.workdir, verbose=args.verbose)
    print("\n" + "\n".join(summary_lines(result)))
    if args.json:
        print(json.dumps(result.to_json(), sort_keys=True))
    return result.exit_code


def _print_config(pipeline, params: dict, *, command: str) -> int:
    from pipelines.recipes import recipe_text

    print(recipe_text(pipeline, params, command=command), end="")
    return 0


def compile(args) -> int:
    from pipelines.compile import compile_pipeline

    pipeline = get_pipeline(args.pipeline)
    defaults = _params(args, pipeline)  # the template's own defaults
    check_params(pipeline, defaults, target="vertex")
    training, serving = _profiles(args, pipeline)
    images = _images(args, serving=serving)
    path = args.output or f"{args.pipeline}.yaml"
    started = time.monotonic()
    compile_pipeline(
        args.pipeline,
        hardware=training,
        serving=serving,
        images=images,
        defaults=defaults,
        path=path,
    )
    took = time.monotonic() - started
    print(f"compiled {args.pipeline} for {training.name} in {took:.1f} s: {path}")
    return 0


def submit(args) -> int:
    from pipelines import submit as vertex
    from pipelines.runnable import prepare
    from pipelines.settings import resolve_settings

    if args.print_config:
        if not args.pipeline:
            raise ValueError("--print-config: name a PIPELINE (a template's config is its own)")
        pipeline = get_pipeline(args.pipeline)
        params = _params(args, pipeline)
        check_params(pipeline, params, target="vertex")
        return _print_config(pipeline, params, command=f"liftoff submit {args.pipeline}")
    if args.template and args.config:
        raise ValueError("--config: a template's parameters are its own; set them with --param")
    settings = resolve_settings({name: getattr(args, name) for name in SETTINGS})
    if settings.is_loopback and not args.dry_run:
        check_reachable(settings.api_endpoint)  # an emulator that is not running: at once
    with tempfile.TemporaryDirectory(prefix="liftoff-submit-") as tmp:
        # A pipeline compiled here, or a pushed template (--template), its params checked.
        what = prepare(args, directory=tmp)
        labels = {**_pairs(args.label, "--label"), "liftoff-pipeline": what.pipeline}
        check_labels(labels)
        # The suffix keeps runs submitted within the same second (a sweep) from colliding.
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        job_id = f"{what.pipeline}-{stamp}-{secrets.token_hex(2)}"
        params = what.params
        params["model_labels"] = {
            "liftoff_run": job_id,
            **({} if what.template_uri else _git_label()),
            **params.get("model_labels", {}),
        }
        template = what.path
        common = {
            "settings": settings,
            "display_name": job_id,
            "job_id": job_id,
            "parameter_values": params,
            "labels": labels,
            "enable_caching": False if args.no_cache else None,
            "experiment": args.experiment,
            "template_uri": what.template_uri,
        }
        if args.dry_run:
            request = vertex.dry_run_request(template, **common)
            print(json.dumps(request, indent=2, sort_keys=True))
            return 0
        result = _call_vertex(vertex.submit, template, wait=args.wait, **common)
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


def _params(args, pipeline) -> dict:
    """The parameters a recipe (--config) makes, the --param values over them (typed by the
    declared parameters), and the recipe's overrides, then --param's, then --set."""
    from pipelines.params import parse_params
    from pipelines.recipes import recipe_params

    config = getattr(args, "config", None)
    params = recipe_params(pipeline, config) if config else {}
    kinds = {param.name: param.kind for param in pipeline.parameters()}
    given = parse_params(args.param, kinds)
    overrides = [*params.pop("overrides", []), *given.pop("overrides", []), *args.set]
    params.update(given)
    if overrides:
        params["overrides"] = overrides
    return params


def _profiles(args, pipeline):
    from pipelines.hardware import parse_timeout

    scheduling = "SPOT" if args.spot else "FLEX_START" if args.flex_start else None
    timeout_s = parse_timeout(args.timeout) if args.timeout else None
    training = get_profile(args.hardware or pipeline.default_hardware).with_options(
        nodes=args.nodes, scheduling=scheduling, timeout_s=timeout_s
    )
    return training, get_profile(args.serving_hardware)


def _images(args, *, serving):
    """The images to compile with: flags, LIFTOFF_*_IMAGE, pinned digests, or the project's
    Artifact Registry (pipelines/images.py)."""
    from pipelines.images import DEFAULT_REPO, Registry, resolve_images
    from pipelines.settings import check_region, lookup

    names = ["project", "region", "image_repo", "image_version"]
    found, sources = lookup(names, {name: getattr(args, name) for name in names})
    if "region" in found:
        check_region(found["region"], source=sources["region"])
    registry = Registry(
        project=found.get("project", ""),
        region=found.get("region", ""),
        repo=found.get("image_repo", DEFAULT_REPO),
        version=found.get("image_version", ""),
    )
    flags = {"trainer_image": args.trainer_image, "serving_image": args.serving_image}
    return resolve_images(
        flags=flags, registry=registry, serving_accelerated=serving.accelerator_count > 0
    )


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
    from pipelines.images import commit_sha

    sha = commit_sha()
    return {"git_sha": sha[:12]} if sha else {}
