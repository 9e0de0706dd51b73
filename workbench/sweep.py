"""Hyperparameter sweeps: Optuna proposes training options, Ray Tune runs the trials across the cluster.

Each trial trains a LoRA from one recipe with the options Optuna suggests (grid, random or TPE sampler),
reporting the trainer's validation figures every ``validation_steps`` through :meth:`StageEvents.validated`;
Tune's ASHA scheduler stops the trials that fall behind (under Tune, early stopping comes from Tune's
scheduler: Optuna's own pruners act only in a plain Optuna study). A trial that runs to the end generates a
fixed set of images from fixed seeds and evaluates them. Trials are MLflow runs nested under one ``sweep``
parent; a pruned trial's runs end KILLED with the tag ``workbench.sweep.pruned=true`` and its Optuna trial is
PRUNED.

The Optuna study lives in a journal file in the workspace (``sweeps/<name>-<id>/optuna.journal``), so
re-running the same sweep file continues the same study: finished and pruned trials count toward
``n_trials``, trials a killed run left RUNNING become FAIL, and the sampler sees every earlier trial.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from workbench.config import StageConfig, field
from workbench.errors import WorkbenchError
from workbench.stage import StageEvents, StageStopped
from workbench.workspace import Workspace

SWEEP_TAG = "workbench.sweep.id"
TRIAL_TAG = "workbench.sweep.trial"
PRUNED_TAG = "workbench.sweep.pruned"
_NOT_IN_SWEEP_ID = {
    "n_trials",
    "max_concurrent",
}  # a sweep can be extended or run wider and stay the same study


@dataclass
class SweepConfig(StageConfig):
    name: str = field("sweep", help="Name of the sweep (parent MLflow run and Optuna study).")
    subject_id: str = field("demo", help="Subject whose intake dataset every trial trains on.")
    recipe: str = field("experiments/train/tiny-demo.yaml", help="Training recipe every trial starts from.")
    model: str | None = field(None, help="Model override for every trial (preset, hub id or folder).")
    overrides: dict[str, Any] = field(
        default_factory=dict, help="Training options fixed for every trial (on top of the recipe)."
    )
    params: dict[str, Any] = field(
        default_factory=dict,
        help="Training option -> a list of values, or {low, high, log, step} for a number range.",
    )
    grid: dict[str, list[Any]] = field(
        default_factory=dict, help="Old form of params (lists only); implies sampler: grid."
    )
    sampler: Literal["grid", "random", "tpe"] = field("tpe", help="Optuna sampler.")
    n_trials: int | None = field(None, help="Trials in all (default: the grid's size, else 8).")
    metric: str = field(
        "face_distance", help="Validation figure to optimise: face_distance, same_person_rate, train_loss..."
    )
    mode: Literal["min", "max"] = field("min", help="Whether the metric is better low or high.")
    pruning: bool = field(True, help="Stop trials early with ASHA, on the validation figure.")
    grace_validations: int = field(1, help="Validations every trial gets before it can be stopped.")
    reduction_factor: int = field(2, help="ASHA keeps 1/reduction_factor of the trials at each rung.")
    max_concurrent: int | None = field(None, help="Trials at once (default: as many as resources allow).")
    evaluate: bool = field(True, help="Generate and evaluate the images of trials that run to the end.")
    presets: list[str] = field(
        default_factory=lambda: ["soft-studio"], help="Style presets generated per trial."
    )
    images_per_cell: int = field(2, help="Images generated per trial (same seeds in every trial).")
    generate_steps: int | None = field(None, help="Denoising steps per image; none = the presets' own.")
    seed: int = field(0, help="Base seed of generation and of the sampler.")

    def __post_init__(self) -> None:
        if self.grid and not self.params:  # the first sweep files: `grid: {rank: [4, 8]}`
            self.params, self.sampler = dict(self.grid), "grid"
        if not self.params:
            raise WorkbenchError(
                "A sweep needs 'params', e.g. params: {rank: [4, 8], learning_rate: {low: 1e-4, high: 1e-3, log: true}}."
            )
        for name, spec in self.params.items():
            if isinstance(spec, list):
                if not spec:
                    raise WorkbenchError(f"Sweep option '{name}' has an empty list of values.")
            elif not (isinstance(spec, dict) and {"low", "high"} <= set(spec)):
                raise WorkbenchError(
                    f"Sweep option '{name}' must be a list of values or {{low, high}}, got {spec!r}."
                )
            elif self.sampler == "grid":
                raise WorkbenchError(f"A grid sweep needs lists of values; '{name}' is a range.")

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.params.values() if isinstance(v, list))

    def total_trials(self) -> int:
        return self.n_trials or (self.grid_size() if self.sampler == "grid" else 8)

    def sweep_id(self) -> str:
        data = {k: v for k, v in self.to_dict().items() if k not in _NOT_IN_SWEEP_ID}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def cells(self) -> list[dict[str, Any]]:
        """The grid's combinations (the grid sampler visits each once)."""
        import itertools

        names = sorted(self.params)
        return [dict(zip(names, c, strict=True)) for c in itertools.product(*(self.params[n] for n in names))]


@dataclass
class SweepResult:
    run_id: str
    sweep_id: str
    study_name: str
    storage: str
    rows: list[dict[str, Any]]  # every finished/pruned trial of the study (earlier runs' included)
    ran: int  # trials run by this call
    errors: list[str] = dataclasses.field(
        default_factory=list
    )  # why trials of this call failed, one line each

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class TuneEvents(StageEvents):
    """Feeds each mid-run validation to Ray Tune (the last one is the trial's final report, made after its run)."""

    def __init__(self, metric: str, final_step: int) -> None:
        super().__init__()
        self.metric = metric
        self.final_step = final_step

    def validated(self, stage: str, step: int, metrics: dict[str, float]) -> None:
        from ray import tune

        if step < self.final_step and self.metric in metrics and math.isfinite(metrics[self.metric]):
            # Blocks while the scheduler decides; when it stops the trial, this raises or the actor ends.
            report = {f"val_{k}": v for k, v in metrics.items()}
            try:
                tune.report({**report, self.metric: metrics[self.metric], "step": step, "completed": 0})
            except BaseException as exc:  # the scheduler stopped the trial: end the runs KILLED, not FAILED
                raise StageStopped(f"trial stopped by the Tune scheduler at step {step} (pruned)") from exc


def _optuna_space(params: dict[str, Any]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = {}
    for name, spec in params.items():
        if isinstance(spec, list):
            space[name] = CategoricalDistribution(spec)
        elif all(isinstance(spec[k], int) for k in ("low", "high")) and not isinstance(
            spec.get("step", 1), float
        ):
            space[name] = IntDistribution(
                spec["low"], spec["high"], log=spec.get("log", False), step=spec.get("step", 1)
            )
        else:
            space[name] = FloatDistribution(float(spec["low"]), float(spec["high"]), log=spec.get("log", False),
                                            step=spec.get("step"))  # fmt: skip
    return space


def _sampler(config: SweepConfig):
    import optuna

    if config.sampler == "grid":
        return optuna.samplers.GridSampler({k: list(v) for k, v in config.params.items()}, seed=config.seed)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=config.seed)
    return optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=min(4, config.total_trials()))


def _searcher(config: SweepConfig, storage, study_name: str):
    """Ray Tune's OptunaSearch, marking trials that Tune stopped early as PRUNED (not COMPLETE) in Optuna."""
    from optuna.trial import TrialState
    from ray.tune.search.optuna import OptunaSearch

    class PruneAwareOptunaSearch(OptunaSearch):
        def suggest(self, trial_id: str):
            suggestion = super().suggest(trial_id)
            if trial_id in self._ot_trials:
                self._ot_trials[trial_id].set_user_attr("tune_trial_id", trial_id)
            return suggestion

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
            if not error and trial_id in self._ot_trials and not (result or {}).get("completed"):
                # Stopped by the scheduler: PRUNED (Optuna keeps the last reported value as its value).
                try:
                    self._ot_study.tell(self._ot_trials[trial_id], state=TrialState.PRUNED)
                except RuntimeError:  # the grid sampler's study.stop() outside optimize(): the state is saved
                    pass
                self._completed_trials.add(trial_id)
                return
            super().on_trial_complete(trial_id, result, error)

    # metric and mode go to the searcher and the scheduler themselves: a searcher built with its space
    # ignores the ones TuneConfig would pass down.
    return PruneAwareOptunaSearch(_optuna_space(config.params), metric=config.metric, mode=config.mode,
                                  sampler=_sampler(config), study_name=study_name, storage=storage)  # fmt: skip


def _trial(params: dict[str, Any], *, config: SweepConfig, workspace_root: str, tracking_uri: str,
           experiment: str, parent_run_id: str) -> None:  # fmt: skip
    """One Tune trial: train (reporting validations), then generate and evaluate; one nested MLflow run."""
    import mlflow
    from ray import tune

    from workbench.evaluate import EvalConfig, run_eval
    from workbench.generate import GenerateConfig, run_generate
    from workbench.tracking import stage_run
    from workbench.tracking.runs import EXPERIMENT_ENV_VAR
    from workbench.train import TrainConfig, run_train

    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri  # the worker logs where the driver logs
    os.environ[EXPERIMENT_ENV_VAR] = experiment
    workspace = Workspace(Path(workspace_root))
    trial_id = tune.get_context().get_trial_id()
    base = TrainConfig.from_yaml(config.recipe).replace(model=config.model).with_overrides(config.overrides)
    train_config = base.replace(**params)
    tags = {"mlflow.parentRunId": parent_run_id, SWEEP_TAG: config.sweep_id(), TRIAL_TAG: trial_id,
            **{f"workbench.sweep.param.{k}": str(v) for k, v in params.items()}}  # fmt: skip
    events = TuneEvents(config.metric, train_config.max_train_steps)
    subject = config.subject_id
    with stage_run(
        workspace, "trial", train_config, subject_id=subject, run_name=f"trial-{trial_id}", tags=tags
    ):
        trained = run_train(subject, train_config, workspace=workspace, events=events)
        final = {f"val_{k}": v for k, v in trained.validation.items()}
        row = {"train.final_loss": trained.final_loss, "train_run": trained.run_id}
        if config.evaluate:
            batch = GenerateConfig(model=base.model, lora=str(trained.lora_file), presets=config.presets,
                                   count=config.images_per_cell, steps=config.generate_steps, seed=config.seed)  # fmt: skip
            generated = run_generate(subject, batch, workspace=workspace)
            evaluated = run_eval(subject, EvalConfig(), workspace=workspace, images=generated.out_dir)
            row.update(
                {f"eval.{k}": v for k, v in evaluated.metrics.items() if not k.endswith((".lo", ".hi"))}
            )
            row.update(generate_run=generated.run_id, eval_run=evaluated.run_id)
        value = trained.validation.get(config.metric, final.get(config.metric))
        if config.metric == "train_loss":
            value = trained.final_loss
        if value is None or not math.isfinite(value):
            raise WorkbenchError(
                f"Sweep metric '{config.metric}' was not measured (validation gave {sorted(trained.validation)}): "
                "on the tiny preset no face is found, so use metric: train_loss there."
            )
        mlflow.set_tag(PRUNED_TAG, "false")
        mlflow.log_metrics({**_numbers(row), f"sweep.{config.metric}": value})
    # After the run has ended: Tune may stop the trial at this report (its last rung), which raises here.
    tune.report({**final, config.metric: value, "completed": 1, **_numbers(row)})


def _numbers(row: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def run_sweep(
    config: SweepConfig,
    workspace: Workspace,
    events: StageEvents | None = None,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    max_trials: int | None = None,
) -> SweepResult:
    """Run the trials the study still lacks (``max_trials`` caps this call: a sweep in installments)."""
    import mlflow
    import optuna
    from optuna.trial import TrialState

    from workbench.tracking import configure_tracking, tracking_uri
    from workbench.tracking.runs import DEFAULT_EXPERIMENT, EXPERIMENT_ENV_VAR
    from workbench.train import TrainConfig

    base = TrainConfig.from_yaml(config.recipe).replace(model=config.model).with_overrides(config.overrides)
    unknown = [n for n in config.params if not hasattr(base, n)]
    if unknown:
        raise WorkbenchError(
            f"Sweep option(s) {', '.join(unknown)} are not training options; see `workbench train -h`."
        )
    if config.pruning and not base.validation_steps:
        raise WorkbenchError("Pruning needs validations during training: set validation_steps in the recipe.")
    sweep_id = config.sweep_id()
    folder = workspace.root / "sweeps" / f"{config.name}-{sweep_id}"
    folder.mkdir(parents=True, exist_ok=True)
    journal = folder / "optuna.journal"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study_name = f"{config.name}-{sweep_id}"
    direction = "minimize" if config.mode == "min" else "maximize"
    study = optuna.create_study(
        study_name=study_name, storage=storage, direction=direction, load_if_exists=True
    )
    for trial in study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING)):
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # a killed run's trials
    done = len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))
    todo = max(0, config.total_trials() - done)
    if max_trials is not None:
        todo = min(todo, max_trials)

    experiment_id = configure_tracking(workspace)
    uri = tracking_uri(workspace)
    client = mlflow.MlflowClient(uri)
    parent_id = _parent_run(client, experiment_id, config, sweep_id)
    status = "FAILED"
    try:
        errors = []
        if todo:
            errors = _tune(config, workspace, storage, study_name, todo, uri, parent_id, address, num_cpus,
                           folder, os.environ.get(EXPERIMENT_ENV_VAR, DEFAULT_EXPERIMENT), base)  # fmt: skip
        rows = _rows(
            client, experiment_id, optuna.load_study(study_name=study_name, storage=storage), sweep_id
        )
        _log_table(client, parent_id, rows)
        status = "FINISHED"
        return SweepResult(parent_id, sweep_id, study_name, str(journal), rows, todo, errors)
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        client.set_terminated(parent_id, status)


def _tune(config, workspace, storage, study_name, todo, uri, parent_id, address, num_cpus, folder, experiment,
          base) -> list[str]:  # fmt: skip
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from workbench.study.runner import start_ray

    ray = start_ray(address, num_cpus)
    gpu = ray.cluster_resources().get("GPU", 0) > 0
    trainable = tune.with_resources(
        tune.with_parameters(
            _trial,
            config=config,
            workspace_root=str(workspace.root),
            tracking_uri=uri,
            experiment=experiment,
            parent_run_id=parent_id,
        ),  # fmt: skip
        {"gpu": 1, "cpu": 1} if gpu else {"cpu": 1},
    )
    # Reports per trial: one per validation before the last step, then the final one (ASHA's time unit).
    reports = (base.max_train_steps - 1) // base.validation_steps + 1 if base.validation_steps else 1
    scheduler = (
        ASHAScheduler(
            metric=config.metric,
            mode=config.mode,
            max_t=reports,
            grace_period=config.grace_validations,
            reduction_factor=config.reduction_factor,
        )  # fmt: skip
        if config.pruning
        else FIFOScheduler()
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=_searcher(config, storage, study_name),
            scheduler=scheduler,
            num_samples=todo,
            max_concurrent_trials=config.max_concurrent,
        ),  # fmt: skip
        run_config=tune.RunConfig(
            storage_path=str(folder / "tune"),
            name="trials",
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=1),
        ),  # fmt: skip
    )
    results = tuner.fit()
    _mark_pruned(results)
    # A failed trial's error arrives wrapped in Ray's traceback; its last line is the workbench's sentence.
    return [
        next((line for line in reversed(str(e).splitlines()) if line.strip()), repr(e))
        for e in results.errors
    ]


def _mark_pruned(results) -> None:
    """Trials Tune stopped early: their trial run and the runs under it end KILLED, tagged pruned."""
    import mlflow

    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    for result in results:
        metrics = result.metrics or {}
        if metrics.get("completed") or "trial_id" not in metrics:
            continue
        runs = client.search_runs(experiments, f"tags.`{TRIAL_TAG}` = '{metrics['trial_id']}'")
        for run in runs:
            children = client.search_runs(experiments, f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")
            for r in [run, *children]:
                client.set_tag(r.info.run_id, PRUNED_TAG, "true")
                # Stopping the trial raises inside its thread (the run may have ended FAILED) or kills its
                # actor (the run stays RUNNING): either way the run was stopped on purpose.
                if r.info.status != "FINISHED":
                    client.set_terminated(r.info.run_id, "KILLED")


def _parent_run(client, experiment_id: str, config: SweepConfig, sweep_id: str) -> str:
    runs = client.search_runs([experiment_id], f"tags.`{SWEEP_TAG}` = '{sweep_id}' and tags.`workbench.stage` = 'sweep'",
                              max_results=1)  # fmt: skip
    if runs:
        client.update_run(runs[0].info.run_id, status="RUNNING")
        return runs[0].info.run_id
    from mlflow.entities import Param

    from workbench.tracking import SUBJECT_TAG

    tags = {"workbench.stage": "sweep", SWEEP_TAG: sweep_id, SUBJECT_TAG: config.subject_id}
    run = client.create_run(experiment_id, tags=tags, run_name=config.name)
    client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in config.to_flat().items()])
    client.log_text(run.info.run_id, config.to_yaml(), "config/sweep.yaml")
    return run.info.run_id


def _rows(client, experiment_id: str, study, sweep_id: str) -> list[dict[str, Any]]:
    """One row per Optuna trial that ended (this call's and earlier ones'), with its MLflow run's figures."""
    from optuna.trial import TrialState

    runs = client.search_runs(
        [experiment_id], f"tags.`{SWEEP_TAG}` = '{sweep_id}' and tags.`workbench.stage` = 'trial'"
    )
    by_trial = {r.data.tags.get(TRIAL_TAG): r for r in runs}
    rows = []
    for trial in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)):
        run = by_trial.get(trial.user_attrs.get("tune_trial_id"))
        row = {"trial": trial.number, "state": trial.state.name, **trial.params, "value": trial.value,
               "run_id": run.info.run_id if run else None}  # fmt: skip
        if run is not None:
            row.update({k: v for k, v in run.data.metrics.items()})
        rows.append(row)
    return rows


def _log_table(client, run_id: str, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    client.log_text(run_id, buffer.getvalue(), "sweep/results.csv")
    client.log_text(run_id, json.dumps(rows, indent=2, default=str), "sweep/results.json")
