"""The sweep controller: a HyperDrive parent run whose progress is a function of the stored
state (its children, their statuses and primary-metric series) to the next actions.

:func:`step` is one reconcile step of a sweep: move its children forward (dispatch, ingest),
cancel the ones the early-termination policy names, start new trials while the budget allows,
and end the sweep. Every action is idempotent and keyed by (sweep, trial index): trial ``k`` is
the child run ``<sweep id>_<k>`` (Azure ML v1's naming), so a controller killed at any point
and started again (or two at once) never starts a trial twice; what a trial was given is
stored on its run (``hyperparameters`` property). Suggestions come from
:mod:`runyard.services.sweeps.search` rebuilt from that stored history; the policies are
:mod:`runyard.services.sweeps.policies`.

Hyperparameters reach the script as command-line arguments: ``--lr 0.01`` for a space key
``"--lr"``; a key without a leading ``-`` gets ``--`` (``"lr"`` -> ``--lr 0.01``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from runyard.entities import RunRecord, RunStatus
from runyard.errors import AlreadyExists, InvalidParameter, RunyardError
from runyard.services.runs.control import STOPPED_TAG, cancel_run
from runyard.services.runs.submit import dispatch, plan_run, record_run
from runyard.services.runs.sync import sync_run
from runyard.services.targets import get_kind
from runyard.store.base import RunFilter, Transition

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext
    from runyard.runconfig import ScriptRunConfig

__all__ = ["SWEEP_RUN_TYPE", "child_id", "submit_sweep", "step",
           "trial_args"]

SWEEP_RUN_TYPE = "hyperdrive"
#: Tag of a child run: its trial index.
TRIAL_TAG = "runyard.trial"
#: Property of a child run: the JSON of its hyperparameters.
HP_PROPERTY = "hyperparameters"
#: Tag of a child the policy (or the sweep's end) stopped: why.
TERMINATED_TAG = STOPPED_TAG
#: How many finished trials must show a problem (no primary metric, all failed) before the
#: sweep stops and says so.
EARLY_CHECK = 3


def child_id(sweep_id: str, index: int) -> str:
    """The run id of trial ``index`` of sweep ``sweep_id``."""
    return f"{sweep_id}_{index}"


def trial_args(params: dict[str, Any]) -> list[str]:
    """The command-line arguments of a trial (see the module docs)."""
    out: list[str] = []
    for key, value in params.items():
        out += [key if key.startswith("-") else f"--{key}", _arg(value)]
    return out


def _arg(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return str(value)


def _group_slots(ctx: WorkspaceContext, target_name: str) -> bool:
    """Whether the target's runner enforces a slot group (``JobSpec.slot_group``)."""
    try:
        return bool(type(get_kind(ctx, target_name)).group_slots)
    except RunyardError:
        return False


def _capacity(ctx: WorkspaceContext, target_name: str) -> int | None:
    """How many runs the target can run at once (None: no known limit)."""
    target = get_kind(ctx, target_name)
    fn = getattr(target, "capacity", None)
    return fn() if callable(fn) else None


def submit_sweep(ctx: WorkspaceContext, experiment: str, spec: dict[str, Any],
                 config: ScriptRunConfig, tags: dict[str, Any] | None = None) -> RunRecord:
    """Check and record a sweep (its children's template: one snapshot, one environment) and
    start its first trials; returns the sweep's run at once."""
    from runyard.services.sweeps import search  # noqa: PLC0415

    search.require_optuna()
    spec = dict(spec)
    for key in ("sampling", "primary_metric", "max_total_runs"):
        if key not in spec:
            raise InvalidParameter(key, "missing from the sweep specification")
    _check_resume(ctx, spec)
    template, _ = plan_run(ctx, experiment, config, tags, allow_run_based=False)
    concurrent = int(spec.get("max_concurrent_runs") or spec["max_total_runs"])
    cap = _capacity(ctx, str(template["target"]))
    if cap is not None and concurrent > cap:
        warnings.warn(f"max_concurrent_runs={concurrent} is above what target "
                      f"{template['target']!r} runs at once ({cap}); the sweep runs {cap} "
                      "trials at a time", stacklevel=3)
        spec["max_concurrent_runs_requested"] = concurrent
        concurrent = cap
    spec["max_concurrent_runs"] = concurrent
    props = dict(spec["sampling"].get("properties") or {})
    seed = props.get("seed")
    spec["seed"] = int(seed) if seed is not None else int.from_bytes(os.urandom(4), "big")
    sweep_id = f"HD_{uuid.uuid4()}"
    clean = dict(template["tags"])
    v1_tags = {
        "generator_config": json.dumps(spec["sampling"]),
        "primary_metric_config": json.dumps(spec["primary_metric"]),
        "max_total_jobs": str(spec["max_total_runs"]),
        "max_concurrent_jobs": str(concurrent),
        "max_duration_minutes": str(spec.get("max_duration_minutes", 10080)),
        "policy_config": json.dumps(spec.get("policy") or {"name": "Default",
                                                             "properties": {}})}
    now = time.time()
    run = RunRecord(id=sweep_id, experiment=experiment, status=RunStatus.QUEUED,
                    created_at=now, run_type=SWEEP_RUN_TYPE, target=str(template["target"]),
                    snapshot_id=template.get("snapshot_id"),
                    definition={"sweep": spec, "template": template,
                                "runDefinition": template["definition"]["runDefinition"],
                                "sourceDirectory": template["definition"]["sourceDirectory"]},
                    tags={**clean, **v1_tags})
    ctx.store.get_or_create_experiment(experiment)
    ctx.store.create_run(run, "sweep submitted")
    ctx.store.transition(Transition(sweep_id, RunStatus.RUNNING, "sweep started", time.time()))
    step(ctx, sweep_id)
    return ctx.store.get_run(sweep_id) or run


@contextlib.contextmanager
def _lock(ctx: WorkspaceContext, sweep_id: str) -> Iterator[bool]:
    """One controller step of a sweep at a time (others skip: the holder does the work)."""
    path = ctx.run_dir(sweep_id) / ".controller.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def children(ctx: WorkspaceContext, sweep_id: str) -> dict[int, RunRecord]:
    """The sweep's trials by index."""
    out: dict[int, RunRecord] = {}
    for r in ctx.store.list_runs(RunFilter(parent_id=sweep_id, top_level_only=False)):
        tag = r.tags.get(TRIAL_TAG)
        if tag is not None and tag.isdigit():
            out[int(tag)] = r
    return out


#: Series of trials that have ended (they cannot change), by (run id, metric).
_ENDED: dict[tuple[str, str], list[float]] = {}


def series(ctx: WorkspaceContext, run_id: str, metric: str,
           ended: bool = False) -> list[float]:
    """The values a run logged for ``metric``, in order (each log is one interval);
    ``ended``: the run has ended, so its series is read once per process."""
    key = (run_id, metric)
    if ended and key in _ENDED:
        return _ENDED[key]
    rows = ctx.store.get_metric_rows(run_id, [metric])
    out = [float(r.value) for r in sorted(rows, key=lambda r: (r.step, r.ts))
           if r.kind == "scalar" and r.value is not None and math.isfinite(r.value)]
    if ended:
        if len(_ENDED) > 100_000:
            _ENDED.clear()
        _ENDED[key] = out
    return out


def best(values: list[float], goal: str) -> float | None:
    """The best of ``values`` for ``goal`` (None when empty)."""
    if not values:
        return None
    return max(values) if goal == "maximize" else min(values)


def _end(ctx: WorkspaceContext, sweep: RunRecord, status: RunStatus, cause: str,
         error: dict[str, Any] | None = None) -> None:
    ctx.store.transition(Transition(sweep.id, status, cause, time.time(), error=error))


def _stop_live(ctx: WorkspaceContext, trials: dict[int, RunRecord], reason: str) -> None:
    for child in trials.values():
        if not child.status.terminal:
            ctx.store.set_tags(child.id, {TERMINATED_TAG: reason})
            with contextlib.suppress(RunyardError, OSError):
                cancel_run(ctx, child.id)


def _advance(ctx: WorkspaceContext, child: RunRecord) -> RunRecord:
    """Dispatch a trial that waits for its target, or ingest what it reported."""
    if child.handle is None and child.status == RunStatus.QUEUED:
        with contextlib.suppress(RunyardError, OSError):
            target = get_kind(ctx, child.target)
            if target.ready():
                dispatch(ctx, target, child.id)
        return ctx.store.get_run(child.id) or child
    try:
        return sync_run(ctx, child.id, 4, record=child)
    except RunyardError:
        return child


def step(ctx: WorkspaceContext, sweep_id: str) -> RunRecord | None:
    """One controller step of sweep ``sweep_id`` (see the module docs); returns the sweep."""
    with _lock(ctx, sweep_id) as mine:
        if mine:
            _step(ctx, sweep_id)
    return ctx.store.get_run(sweep_id)


def _step(ctx: WorkspaceContext, sweep_id: str) -> None:
    from runyard.services.sweeps import policies, search  # noqa: PLC0415

    sweep = ctx.store.get_run(sweep_id)
    if sweep is None or sweep.status.terminal:
        return
    spec: dict[str, Any] = sweep.definition["sweep"]
    metric = str(spec["primary_metric"]["name"])
    goal = str(spec["primary_metric"]["goal"]).lower()
    trials = {k: (_advance(ctx, c) if not c.status.terminal else c)
              for k, c in children(ctx, sweep_id).items()}
    curves = {k: series(ctx, c.id, metric, c.status.terminal) for k, c in trials.items()}
    # -- early termination ---------------------------------------------------------------------
    policy = spec.get("policy") or {"name": "Default", "properties": {}}
    if policy.get("name") not in (None, "Default"):
        running = {str(k) for k, c in trials.items() if c.status == RunStatus.RUNNING}
        finished = {str(k) for k, c in trials.items() if c.status.terminal}
        decided = policies.to_cancel(
            policy, goal, {str(k): v for k, v in curves.items()
                           if str(k) in running or str(k) in finished}, finished)
        for key, reason in decided.items():
            child = trials.get(int(key))
            if child is None or child.status.terminal:
                continue
            ctx.store.set_tags(child.id, {TERMINATED_TAG: reason})
            with contextlib.suppress(RunyardError, OSError):
                trials[int(key)] = cancel_run(ctx, child.id)
    # -- problems the first finished trials show --------------------------------------------------
    done = [trials[k] for k in sorted(trials) if trials[k].status.terminal]
    first = done[:EARLY_CHECK]
    total = int(spec["max_total_runs"])
    if len(first) >= min(EARLY_CHECK, total):
        if all(c.status == RunStatus.FAILED for c in first):
            err = dict(first[0].error or {})
            msg = err.get("message") or "the trial failed"
            _stop_live(ctx, trials, "the sweep failed")
            _end(ctx, sweep, RunStatus.FAILED, "the first trials failed", error={
                "message": f"The first {len(first)} trials failed; the sweep stopped. Trial "
                           f"{first[0].id}: {msg}", "child_error": err})
            return
        completed = [c for c in first if c.status == RunStatus.COMPLETED]
        if completed and not any(curves.get(int(c.tags.get(TRIAL_TAG) or -1))
                                 for c in completed):
            logged = sorted({r.name for c in completed
                             for r in ctx.store.get_metric_rows(c.id)})
            _stop_live(ctx, trials, "the sweep failed")
            _end(ctx, sweep, RunStatus.FAILED, "primary metric never logged", error={
                "message": f"primary_metric_name {metric!r} was not logged by any of the "
                           f"first {len(completed)} completed trials (they logged: "
                           f"{', '.join(logged) or 'no metrics'}); make the script call "
                           f"run.log({metric!r}, value), or fix primary_metric_name"})
            return
    # -- budget --------------------------------------------------------------------------------
    live = [c for c in trials.values() if not c.status.terminal]
    elapsed = time.time() - sweep.created_at
    limit = float(spec.get("max_duration_minutes") or 10080) * 60.0
    if elapsed > limit:
        _stop_live(ctx, trials, "max_duration_minutes reached")
        _finish(ctx, sweep, spec, goal, metric, "max_duration_minutes reached")
        return
    concurrent = int(spec["max_concurrent_runs"])
    template = sweep.definition["template"]
    # where the runner enforces the sweep's own limit (a slot group on the host), the next
    # trials are started ahead: each waits for a slot, and begins the moment one frees
    # (not for Bayesian search, which learns from every ended trial before it suggests)
    ahead = (spec["sampling"].get("name") != "BayesianOptimization"
             and _group_slots(ctx, str(template["target"])))
    room = min(concurrent * (2 if ahead else 1) - len(live), total - len(trials))
    exhausted = False
    if room > 0:
        history = [(json.loads(c.properties.get(HP_PROPERTY) or c.tags.get(HP_PROPERTY)
                               or "{}"),
                    best(curves.get(k, []), goal), _state(c)) for k, c in sorted(trials.items())]
        found = search.suggest_next(spec["sampling"], goal, int(spec["seed"]),
                                    _resumed(ctx, spec, metric, goal) + history, room)
        exhausted = len(found) < room
        for offset, params in enumerate(found):
            index = len(trials) + offset
            cid = child_id(sweep_id, index)
            try:
                record_run(ctx, template, cid, parent_id=sweep_id,
                           extra_args=trial_args(params),
                           extra_tags={TRIAL_TAG: str(index),
                                       HP_PROPERTY: json.dumps(params)},
                           display_name=f"trial {index}",
                           slot_group={"key": sweep_id, "count": concurrent} if ahead
                           else None)
            except AlreadyExists:
                continue  # started by another controller step
            ctx.store.add_properties(cid, {HP_PROPERTY: json.dumps(params)})
        now = ctx.store.get_run(sweep_id)
        if now is not None and now.status.terminal:  # canceled while these were started
            _stop_live(ctx, children(ctx, sweep_id), "the sweep was canceled")
        if found:
            return
    if not live and (len(trials) >= total or exhausted or room <= 0):
        _finish(ctx, sweep, spec, goal, metric,
                "every trial ended" if len(trials) >= total else "the search space is "
                "exhausted")


def _resumed(ctx: WorkspaceContext, spec: dict[str, Any], metric: str, goal: str
             ) -> list[tuple[dict[str, Any], float | None, str]]:
    """The finished trials of the sweeps this one resumes from (``resume_from``): the search
    starts knowing them (a warm start); they are not run again."""
    out: list[tuple[dict[str, Any], float | None, str]] = []
    for sid in spec.get("resume_from") or []:
        for _k, c in sorted(children(ctx, str(sid)).items()):
            if c.status.terminal:
                out.append((json.loads(c.properties.get(HP_PROPERTY) or "{}"),
                            best(series(ctx, c.id, metric), goal), _state(c)))
    return out


def _check_resume(ctx: WorkspaceContext, spec: dict[str, Any]) -> None:
    """Each ``resume_from`` sweep exists, has ended, and searched the same parameters."""
    keys = set(spec["sampling"].get("parameter_space") or {})
    for sid in spec.get("resume_from") or []:
        prev = ctx.store.get_run(str(sid))
        if prev is None or prev.run_type != SWEEP_RUN_TYPE:
            raise InvalidParameter("resume_from", f"{sid!r} is not a sweep of this workspace")
        if not prev.status.terminal:
            raise InvalidParameter("resume_from", f"sweep {sid} is still "
                                   f"{prev.status.value}; resume from a sweep that has ended")
        old = set(prev.definition["sweep"]["sampling"].get("parameter_space") or {})
        if old != keys:
            raise InvalidParameter("resume_from", f"sweep {sid} searched {sorted(old)}, not "
                                   f"{sorted(keys)}; resume only from a sweep over the same "
                                   "parameters")


def _state(run: RunRecord) -> str:
    if not run.status.terminal:
        return "running"
    if run.status == RunStatus.COMPLETED:
        return "complete"
    if run.status == RunStatus.CANCELED and run.tags.get(TERMINATED_TAG):
        return "pruned"
    return "fail"


def _finish(ctx: WorkspaceContext, sweep: RunRecord, spec: dict[str, Any], goal: str,
            metric: str, cause: str) -> None:
    trials = children(ctx, sweep.id)
    scored: list[tuple[float, RunRecord]] = []
    for c in trials.values():
        value = best(series(ctx, c.id, metric, True), goal) \
            if c.status == RunStatus.COMPLETED else None
        if value is not None:
            scored.append((value, c))
    if scored:
        v, c = (max if goal == "maximize" else min)(scored, key=lambda p: p[0])
        ctx.store.add_properties(sweep.id, {"best_child_run_id": c.id,
                                            "best_metric_value": repr(v)})
    if any(c.status == RunStatus.COMPLETED for c in trials.values()):
        _end(ctx, sweep, RunStatus.COMPLETED, cause)
    else:
        _end(ctx, sweep, RunStatus.FAILED, cause, error={
            "message": f"no trial of the sweep completed ({len(trials)} started)"})
