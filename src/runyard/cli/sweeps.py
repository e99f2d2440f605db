"""``runyard sweep``: submit a hyperparameter sweep written as a YAML file, show, list and
cancel sweeps. The trials table is :func:`runyard.cli.run_views.print_trials`, shared with
``runyard run show <sweep>``.

The file format is documented in docs/sweep-file.md. :func:`load_sweep_file` checks every
field before anything is submitted: it builds the SDK objects (``ScriptRunConfig``, the
sampling, the policy, ``HyperDriveConfig``), whose own validation names the argument; the error
is re-raised as ``<file>: <path in the file>: <what is wrong and the fix>``. Unknown keys are
refused (a typo would otherwise be silently ignored).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runyard.cli import output, run_views
from runyard.cli.workspace import current_workspace

if TYPE_CHECKING:
    from runyard.errors import InvalidParameter
    from runyard.run import HyperDriveRun
    from runyard.sweeps import EarlyTerminationPolicy, HyperDriveConfig, HyperParameterSampling
    from runyard.workspace import Workspace

#: Exit code when a waited-for sweep did not end Completed (as ``run submit --wait``).
SWEEP_NOT_COMPLETED_EXIT = 1
INTERRUPTED_EXIT = 130

TOP_KEYS = ("experiment", "source_directory", "script", "arguments", "compute_target",
            "environment", "tags", "sampling", "primary_metric", "max_total_runs",
            "max_concurrent_runs", "max_duration_minutes", "policy")
REQUIRED_KEYS = ("script", "sampling", "primary_metric", "max_total_runs")
SAMPLING_TYPES = {"random": "RandomParameterSampling", "grid": "GridParameterSampling",
                  "bayesian": "BayesianParameterSampling"}
#: Policy type -> (SDK class, the keys it takes besides ``type``).
POLICY_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "bandit": ("BanditPolicy", ("evaluation_interval", "slack_factor", "slack_amount",
                                "delay_evaluation")),
    "median_stopping": ("MedianStoppingPolicy", ("evaluation_interval", "delay_evaluation")),
    "truncation_selection": ("TruncationSelectionPolicy", ("truncation_percentage",
                                                           "evaluation_interval",
                                                           "delay_evaluation")),
    "none": ("NoTerminationPolicy", ()),
}
#: ``HyperDriveConfig`` argument -> where it is written in the file.
_CONFIG_FIELDS = {"primary_metric_name": "primary_metric.name",
                  "primary_metric_goal": "primary_metric.goal",
                  "policy": "policy.type", "hyperparameter_sampling": "sampling",
                  "run_config": "script"}


# -- the file ----------------------------------------------------------------------------------

@dataclass
class SweepFile:
    """A loaded, checked sweep file: where to record it and what to submit."""

    path: Path
    experiment: str
    config: HyperDriveConfig
    tags: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class _Checker:
    """Raises ``InvalidParameter`` naming the file and the path of a field in it."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def error(self, where: str, message: str) -> InvalidParameter:
        from runyard.errors import InvalidParameter  # noqa: PLC0415

        return InvalidParameter(f"{self.file}: {where}" if where else str(self.file), message,
                                details={"file": str(self.file), "path": where})

    @contextmanager
    def at(self, where: Callable[[str], str]) -> Iterator[None]:
        """Re-raise the SDK's ``InvalidParameter`` with its field mapped by ``where``."""
        from runyard.errors import InvalidParameter  # noqa: PLC0415

        try:
            yield
        except InvalidParameter as exc:
            text = str(exc)
            prefix = f"{exc.field}: "
            raise self.error(where(exc.field), text[len(prefix):] if text.startswith(prefix)
                             else text) from None

    def mapping(self, value: Any, where: str, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, Any]:
        """``value`` as a mapping with only ``allowed`` keys and every ``required`` one."""
        if not isinstance(value, Mapping):
            raise self.error(where, f"expected a mapping with keys {', '.join(allowed)}, got "
                                    f"{_show(value)}")
        unknown = [str(k) for k in value if k not in allowed]
        if unknown:
            raise self.error(f"{where}.{unknown[0]}" if where else unknown[0],
                             f"unknown key; the keys here are {', '.join(allowed)} "
                             "(see docs/sweep-file.md)")
        for key in required:
            if value.get(key) is None:
                raise self.error(f"{where}.{key}" if where else key,
                                 "missing; it is required (see docs/sweep-file.md)")
        return dict(value)

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(where, f"expected a non-empty string, got {_show(value)}")
        return value


def _show(value: Any) -> str:
    kind = {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value))
    return kind or f"{type(value).__name__} {value!r}"


def _safe_loader() -> Any:
    """PyYAML's safe loader, refusing a key given twice in one mapping."""
    import yaml  # noqa: PLC0415

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return loader.construct_mapping(node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def load_sweep_file(path: str | Path, ws: Workspace) -> SweepFile:
    """Read and check a sweep file (docs/sweep-file.md); nothing is recorded."""
    import yaml  # noqa: PLC0415

    from runyard.experiment import Experiment  # noqa: PLC0415
    from runyard.runconfig import ScriptRunConfig  # noqa: PLC0415
    from runyard.sweeps import HyperDriveConfig  # noqa: PLC0415

    file = Path(path)
    check = _Checker(file)
    try:
        with open(file, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=_safe_loader())  # noqa: S506 (a safe loader)
    except OSError as exc:
        raise check.error("", f"cannot read it: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise check.error("", f"not valid YAML: {exc}") from None
    doc = check.mapping(data, "", TOP_KEYS, REQUIRED_KEYS)

    experiment = check.string(doc.get("experiment", "default"), "experiment")
    with check.at(lambda _f: "experiment"):
        Experiment(ws, experiment)  # checks the name; records nothing
    source = file.resolve().parent / check.string(doc.get("source_directory", "."),
                                                  "source_directory")
    if not source.is_dir():
        raise check.error("source_directory", f"{source} is not a folder (it is relative to "
                                              "the sweep file's folder)")
    script = check.string(doc["script"], "script")
    if not (source / script).is_file():
        raise check.error("script", f"{script!r} does not exist in the source directory "
                                    f"{source}")
    arguments = doc.get("arguments")
    if arguments is not None and (not isinstance(arguments, list) or not all(
            isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in arguments)):
        raise check.error("arguments", f"expected a list of strings or numbers (the script's "
                                       f"fixed arguments), got {_show(arguments)}")
    target = doc.get("compute_target")
    if target is not None:
        target = check.string(target, "compute_target")
    environment = _environment(check, ws, doc.get("environment"))
    tags = doc.get("tags") or {}
    if not isinstance(tags, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in tags.items()):
        raise check.error("tags", f"expected a mapping of names to strings, got {_show(tags)}")
    with check.at(lambda f: f):
        run_config = ScriptRunConfig(source_directory=str(source), script=script,
                                     arguments=[str(a) for a in arguments or []] or None,
                                     compute_target=target, environment=environment)

    sampling = _sampling(check, doc["sampling"])
    goal, metric = _primary_metric(check, doc["primary_metric"])
    policy = _policy(check, doc.get("policy"))
    budget = {k: doc[k] for k in ("max_concurrent_runs", "max_duration_minutes")
              if doc.get(k) is not None}
    with warnings.catch_warnings(record=True) as caught, \
            check.at(lambda f: _CONFIG_FIELDS.get(f, f)):
        warnings.simplefilter("always")
        config = HyperDriveConfig(run_config=run_config, hyperparameter_sampling=sampling,
                                  primary_metric_name=metric, primary_metric_goal=goal,
                                  max_total_runs=doc["max_total_runs"], policy=policy,
                                  **budget)
    return SweepFile(file, experiment, config, {k: str(v) for k, v in tags.items()},
                     [str(w.message) for w in caught])


def _environment(check: _Checker, ws: Workspace, value: Any) -> Any:
    if value is None:
        return None
    from runyard.environment import Environment  # noqa: PLC0415
    from runyard.errors import NotFound  # noqa: PLC0415

    name, _, version = check.string(value, "environment").partition(":")
    try:
        return Environment.get(ws, name, version or None)
    except NotFound as exc:
        raise check.error("environment", f"{exc}; give NAME or NAME:VERSION of a registered "
                                         "environment (`runyard env list --registered`)"
                          ) from None


def expression(check: _Checker, where: str, value: Any) -> list[Any]:
    """A file's ``{name: [args]}`` as the SDK's ``[name, [args]]`` (checked by the sampling)."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise check.error(where, "expected one expression such as {choice: [1, 2, 3]}, "
                                 f"{{uniform: [0, 1]}} or {{randint: 10}}, got {_show(value)}")
    ((name, args),) = value.items()
    if name == "choice":
        if not isinstance(args, list) or not args:
            raise check.error(where, f"choice takes the list of values, e.g. "
                                     f"{{choice: [16, 32, 64]}}, got {_show(args)}")
        return ["choice", [args]]
    return [str(name), args if isinstance(args, list) else [args]]


def _sampling(check: _Checker, value: Any) -> HyperParameterSampling:
    import runyard.sweeps as sweeps  # noqa: PLC0415

    doc = check.mapping(value, "sampling", ("type", "seed", "parameter_space"),
                        ("type", "parameter_space"))
    kind = doc["type"]
    if kind not in SAMPLING_TYPES:
        raise check.error("sampling.type", f"expected one of {', '.join(SAMPLING_TYPES)}, got "
                                           f"{_show(kind)}")
    space_doc = doc["parameter_space"]
    if not isinstance(space_doc, Mapping) or not space_doc:
        raise check.error("sampling.parameter_space", "expected a mapping of the script's "
                                                      "options to expressions, e.g. "
                                                      "{--lr: {uniform: [0.001, 0.1]}}")
    space = {key: expression(check, f"sampling.parameter_space[{key!r}]", expr)
             for key, expr in space_doc.items()}
    cls = getattr(sweeps, SAMPLING_TYPES[kind])
    seed = doc.get("seed")
    if kind == "grid" and seed is not None:
        raise check.error("sampling.seed", "grid sampling tries every combination in order "
                                           "and takes no seed; remove it")

    def where(f: str) -> str:
        return {"properties": "sampling.seed", "sampling": "sampling.type"}.get(
            f, f"sampling.{f}")

    with check.at(where):
        if kind == "grid":
            return cls(space)  # type: ignore[no-any-return]
        return cls(space, properties=None if seed is None  # type: ignore[no-any-return]
                   else {"seed": seed})


def _primary_metric(check: _Checker, value: Any) -> tuple[str, str]:
    doc = check.mapping(value, "primary_metric", ("name", "goal"), ("name", "goal"))
    goal = doc["goal"]
    if not isinstance(goal, str) or goal.lower() not in ("maximize", "minimize"):
        raise check.error("primary_metric.goal", f"expected maximize or minimize, got "
                                                 f"{_show(goal)}")
    return goal.lower(), check.string(doc["name"], "primary_metric.name")


def _policy(check: _Checker, value: Any) -> EarlyTerminationPolicy | None:
    import runyard.sweeps as sweeps  # noqa: PLC0415

    if value is None:
        return None
    if not isinstance(value, Mapping) or value.get("type") not in POLICY_TYPES:
        raise check.error("policy.type" if isinstance(value, Mapping) else "policy",
                          f"expected a policy with type one of {', '.join(POLICY_TYPES)}, got "
                          f"{_show(value.get('type') if isinstance(value, Mapping) else value)}")
    cls_name, keys = POLICY_TYPES[str(value["type"])]
    doc = check.mapping(value, "policy", ("type", *keys))
    kwargs = {k: v for k, v in doc.items() if k != "type"}
    if cls_name == "TruncationSelectionPolicy" and "truncation_percentage" not in kwargs:
        raise check.error("policy.truncation_percentage", "missing; truncation_selection "
                                                          "needs it (1-99)")
    with check.at(lambda f: f"policy.{f}"):
        return getattr(sweeps, cls_name)(**kwargs)  # type: ignore[no-any-return]


# -- views ---------------------------------------------------------------------------------------

def _json_tag(tags: dict[str, Any], key: str) -> Any:
    import json  # noqa: PLC0415

    text = tags.get(key)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _int_tag(tags: dict[str, Any], key: str) -> int | float | None:
    text = tags.get(key)
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return int(value) if value is not None and value.is_integer() else value


def sweep_view(hd: HyperDriveRun, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What ``sweep show`` prints: the sweep, its budget, best trial and trials."""
    from runyard.entities import RunStatus  # noqa: PLC0415

    d = hd.get_details()
    rows = run_views.trial_rows(hd) if rows is None else rows
    name, goal = hd.primary_metric
    best = next((r for r in rows if r["bestPrimaryMetric"] is not None), None)
    return {
        "runId": d["runId"], "experiment": d["experiment"], "status": d["status"],
        "target": d["target"], "createdTimeUtc": d["createdTimeUtc"],
        "startTimeUtc": d["startTimeUtc"], "endTimeUtc": d.get("endTimeUtc"),
        "durationSeconds": output.duration_seconds(d["startTimeUtc"], d.get("endTimeUtc")),
        "error": d.get("error"),
        "primaryMetric": {"name": name, "goal": goal},
        "sampling": _json_tag(d["tags"], "generator_config"),
        "policy": _json_tag(d["tags"], "policy_config"),
        "maxTotalRuns": _int_tag(d["tags"], "max_total_jobs"),
        "maxConcurrentRuns": _int_tag(d["tags"], "max_concurrent_jobs"),
        "maxDurationMinutes": _int_tag(d["tags"], "max_duration_minutes"),
        "trialsSubmitted": len(rows),
        "trialsDone": sum(RunStatus(r["status"]).terminal for r in rows),
        "trialsRunning": sum(r["status"] == RunStatus.RUNNING.value for r in rows),
        "bestRunId": best["runId"] if best else None,
        "bestPrimaryMetric": best["bestPrimaryMetric"] if best else None,
        "trials": rows,
    }


def print_sweep(view: dict[str, Any], *, top: int = 0) -> None:
    """The ``sweep show`` view of :func:`sweep_view`."""
    click.secho(f"Sweep {view['runId']}", bold=True)
    pm = view["primaryMetric"]
    sampling = view["sampling"] or {}
    policy = view["policy"] or {}
    props = ", ".join(f"{k}={v}" for k, v in (policy.get("properties") or {}).items()
                      if k != "exclude_finished_jobs")
    run_views._grid([
        ("experiment", view["experiment"]), ("status", run_views._status(view["status"])),
        ("target", view["target"]),
        ("primary metric", f"{pm['name']} ({pm['goal']})"),
        ("sampling", sampling.get("name")),
        ("policy", f"{policy.get('name', 'Default')}" + (f" ({props})" if props else "")),
        ("budget", f"{view['maxTotalRuns']} trials, {view['maxConcurrentRuns']} at a time, "
                   f"{view['maxDurationMinutes']} min"),
        ("trials", f"{view['trialsDone']} done, {view['trialsRunning']} running, "
                   f"{view['trialsSubmitted'] - view['trialsDone'] - view['trialsRunning']} "
                   "waiting"),
        ("best trial", None if view["bestRunId"] is None else
         f"{view['bestRunId']} ({pm['name']} = {output.text(view['bestPrimaryMetric'])})"),
        ("started", output.local_time(view["startTimeUtc"])),
        ("duration", output.human_duration(view["durationSeconds"])),
    ])
    if view.get("error"):
        click.echo()
        click.secho("Error", bold=True)
        click.echo(view["error"].get("message", view["error"]))
    click.echo()
    click.secho(f"Trials (best {pm['name']} first)", bold=True)
    run_views.print_trials(view["trials"], pm["name"], top=top)


# -- commands ------------------------------------------------------------------------------------

@click.group("sweep")
def sweep() -> None:
    """Hyperparameter sweeps: submit one written as a YAML file, look at them, cancel them."""


def _get(sweep_id: str) -> HyperDriveRun:
    from runyard.errors import InvalidParameter  # noqa: PLC0415
    from runyard.run import HyperDriveRun, Run  # noqa: PLC0415

    r = Run.get(current_workspace(), sweep_id)
    if not isinstance(r, HyperDriveRun):
        raise InvalidParameter("SWEEP_ID", f"run {sweep_id} is not a sweep (its type is "
                                           f"{r.type}); use `runyard run show {sweep_id}`")
    return r


@sweep.command("submit")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--wait", is_flag=True,
              help="Show each trial as it starts and ends, then the trials table; exit 1 "
                   "unless the sweep ends Completed.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the sweep (with --wait: as `sweep show --json`) as JSON; the trial "
                   "lines go to stderr.")
def submit(file: str, wait: bool, as_json: bool) -> None:
    """Submit the sweep described in FILE (YAML; see docs/sweep-file.md).

    Every field is checked before anything is recorded. Prints the sweep id.
    """
    from runyard.experiment import Experiment  # noqa: PLC0415
    from runyard.run import HyperDriveRun  # noqa: PLC0415

    ws = current_workspace()
    spec = load_sweep_file(file, ws)
    with warnings.catch_warnings(record=True) as caught, \
            output.progress(f"submitting sweep {file}", stderr=True):
        warnings.simplefilter("always")
        hd = Experiment(ws, spec.experiment).submit(spec.config, tags=spec.tags or None)
    for warning in [*spec.warnings, *(str(w.message) for w in caught)]:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    assert isinstance(hd, HyperDriveRun)
    if not wait:
        if as_json:
            output.print_json({"runId": hd.id, "experiment": spec.experiment,
                               "status": hd.get_status()})
        else:
            click.echo(hd.id)
            click.echo(f"follow it with: runyard sweep show {hd.id}", err=True)
        return
    try:
        hd.wait_for_completion(show_output=True, raise_on_error=False,
                               out=sys.stderr if as_json else sys.stdout)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: sweep {hd.id} keeps running; stop it with "
                   f"`runyard sweep cancel {hd.id}`", err=True)
        raise click.exceptions.Exit(INTERRUPTED_EXIT) from None
    view = sweep_view(hd)
    if as_json:
        output.print_json(view)
    elif view["bestRunId"]:
        click.echo(f"best trial: {view['bestRunId']} ({view['primaryMetric']['name']} = "
                   f"{output.text(view['bestPrimaryMetric'])})")
    if view["status"] != "Completed":
        message = (view.get("error") or {}).get("message")
        click.echo(f"sweep {hd.id} ended {view['status']}" + (f": {message}" if message
                                                               else ""), err=True)
        raise click.exceptions.Exit(SWEEP_NOT_COMPLETED_EXIT)


@sweep.command("show")
@click.argument("sweep_id")
@click.option("--top", type=click.IntRange(min=0), default=0,
              help="Only the best N trials in the table (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the sweep as JSON.")
def show(sweep_id: str, top: int, as_json: bool) -> None:
    """Status, primary metric, budget, best trial and the trials sorted by the metric."""
    view = sweep_view(_get(sweep_id))
    if as_json:
        if top:
            view["trials"] = view["trials"][:top]
        output.print_json(view)
    else:
        print_sweep(view, top=top)


@sweep.command("list")
@click.option("-e", "--experiment", help="Only sweeps of this experiment.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Newest N sweeps (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_sweeps(experiment: str | None, limit: int, as_json: bool) -> None:
    """Sweeps, newest first: status, trials done, best value of the primary metric."""
    import itertools  # noqa: PLC0415

    from runyard.experiment import Experiment  # noqa: PLC0415
    from runyard.run import HyperDriveRun  # noqa: PLC0415

    ws = current_workspace()
    ws.client.reconcile()  # statuses current, as `run list`
    found: list[HyperDriveRun] = []
    for exp in Experiment.list(ws, experiment_name=experiment):
        runs = (r for r in exp.get_runs(type=HyperDriveRun.RUN_TYPE)
                if isinstance(r, HyperDriveRun))
        found.extend(itertools.islice(runs, limit) if limit else runs)
    views = [sweep_view(hd) for hd in found]
    views.sort(key=lambda v: (output.parse_iso(v["createdTimeUtc"]), v["runId"]), reverse=True)
    views = views[:limit] if limit else views
    rows = [{k: v for k, v in view.items() if k != "trials"} for view in views]
    if as_json:
        output.print_json(rows)
        return
    output.table(
        ["SWEEP ID", "EXPERIMENT", "STATUS", "TRIALS", "PRIMARY METRIC", "BEST", "CREATED"],
        [[r["runId"], r["experiment"], r["status"],
          f"{r['trialsDone']}/{output.text(r['maxTotalRuns'])}",
          f"{r['primaryMetric']['name']} ({r['primaryMetric']['goal']})",
          r["bestPrimaryMetric"], output.local_time(r["createdTimeUtc"])] for r in rows],
        empty="no sweeps")


@sweep.command("cancel")
@click.argument("sweep_id")
def cancel(sweep_id: str) -> None:
    """Stop a sweep: no new trial starts, and its running trials are canceled."""
    from runyard.entities import RunStatus  # noqa: PLC0415

    hd = _get(sweep_id)
    before = hd.get_status()
    if RunStatus(before).terminal:
        click.echo(f"sweep {hd.id} already ended {before}; nothing to cancel")
        return
    hd.cancel()
    live = [c.id for c in hd.get_children() if not RunStatus(c.get_status()).terminal]
    click.echo(f"sweep {hd.id}: {hd.get_status()}"
               + (f" ({len(live)} trials still stopping)" if live else ""))
