"""`liftoff launch agent`: its key only from Secret Manager, liftoff's runner registered for the
Vertex resources and only those, and clear errors before W&B is contacted."""

from __future__ import annotations

import shlex

import pytest

from pipelines.cli import main
from pipelines.launch import agent
from pipelines.launch.runner import LiftoffVertexRunner

AGENT = "launch agent --queue q --entity team"


@pytest.fixture
def wandbs_loader(monkeypatch):
    from wandb.sdk.launch import loader

    monkeypatch.setattr(loader, "runner_from_config", loader.runner_from_config)
    return loader


@pytest.mark.parametrize("resource", ["vertex", "gcp-vertex"])
def test_the_vertex_resources_get_liftoffs_runner(wandbs_loader, resource):
    from wandb.sdk.launch.environment.local_environment import LocalEnvironment
    from wandb.sdk.launch.registry.local_registry import LocalRegistry

    agent.register_runner(wandb_secret="projects/p/secrets/k/versions/1")
    agent.register_runner(wandb_secret="projects/p/secrets/k/versions/2")  # replaces, not wraps
    built = wandbs_loader.runner_from_config(
        resource, None, {"synchronous": False}, LocalEnvironment(), LocalRegistry()
    )
    assert isinstance(built, LiftoffVertexRunner)
    assert built.wandb_secret == "projects/p/secrets/k/versions/2"
    assert built.environment.region == ""  # the queue config's spec.region decides
    other = wandbs_loader.runner_from_config("local-process", None, {}, LocalEnvironment(), None)
    assert type(other).__name__ == "LocalProcessRunner"


def test_the_installed_wandb_is_the_one_the_runner_mirrors():
    agent.check_wandb()  # raises RuntimeError, and the agent exits 1, on any other


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (AGENT, 2, "--wandb-secret (or LIFTOFF_WANDB_SECRET) is required"),
        (
            AGENT + " --wandb-secret wandb-key",
            2,
            "--wandb-secret: not a Secret Manager version name",
        ),
        (AGENT + " --max-jobs 0 --wandb-secret projects/p/secrets/k/versions/1", 2, "--max-jobs"),
        (AGENT + " --wandb-secret projects/p/secrets/missing/versions/1", 2, "cannot read secret"),
    ],
)
def test_agent_errors_are_one_line_before_w_and_b_is_contacted(
    capsys, monkeypatch, wandb_backend, secret_manager, argv, code, message
):
    monkeypatch.delenv(agent.SECRET_ENV, raising=False)
    assert main(shlex.split(argv)) == code
    err = capsys.readouterr().err
    assert err.startswith("liftoff launch: error: ") and message in err, err
    assert err.count("\n") == 1
    assert wandb_backend.requests == []


LAUNCH_COMMANDS = (["queue-config"], ["agent"], ["job", "create"], ["submit"])


@pytest.mark.parametrize("command", LAUNCH_COMMANDS)
def test_each_launch_command_has_an_example_that_parses(capsys, command):
    from pipelines.cli import parser

    with pytest.raises(SystemExit) as exited:
        main(["launch", *command, "--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    example = help_text.split("example:\n", 1)[1].split("\n\n")[0].replace("\\\n", " ")
    args = parser().parse_args(shlex.split(example)[1:])
    assert args.command == "launch" and callable(args.handler)


def test_launch_help_and_the_runner_load_no_trainer_stack():
    from tests.support.imports import modules_after, within

    loaded = modules_after(
        "from pipelines import cli\n"
        "for argv in (['launch', '--help'], ['launch', 'submit', '--help']):\n"
        "    try:\n"
        "        cli.main(argv)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0\n"
        "import pipelines.launch.agent, pipelines.launch.runner, pipelines.launch.jobs\n"
    )
    assert "pipelines.launch.runner" in loaded  # the check sees imports
    # The agent image has neither: it launches trainers, it does not train.
    assert (
        within(loaded, ["torch", "transformers", "kfp", "google_cloud_pipeline_components"]) == []
    )
