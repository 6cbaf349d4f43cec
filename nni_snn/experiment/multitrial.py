"""Multi-trial NAS over ``SNNDartsSpace``: NNI 3.0's ``Random`` or ``RegularizedEvolution`` through ``NasExperiment``.

The parent process (:func:`run_multitrial`) starts the real NNI manager (web UI included) and runs the strategy;
the strategy samples architectures and the manager launches one trial process per sample. A trial runs
``python -m nni.nas.execution.training_service trial``, which rebuilds the fixed network from the sample and calls
:func:`train_sampled` (through ``FunctionalEvaluator``): it trains that network on the weight half of the training
split, validates on the alpha half (the data an MA-DARTS search uses, so the numbers compare), reports every epoch
and a final result (``default`` = final validation accuracy, spikes alongside) with plain ``nni.report_*``.

Unlike NNI's in-process engine (see ``nni_snn.experiment.trial``), the multi-trial trial entry hands the model straight to the
evaluator without swapping NNI's trial channel, so plain ``nni.report_*`` reaches the manager.

Afterwards the best sample (NNI's ``export_top_models``) becomes ``arch.json`` in ``opts.output``, next to
``metrics.json`` listing every trial and the cell pictures.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path

import nni
import pytorch_lightning as pl
import torch

from nni_snn.cli.options import MultitrialOptions, RetrainOptions
from nni_snn.data.images import load_dataset, load_for, split_for_search
from nni_snn.errors import MultitrialError
from nni_snn.experiment.manager_host import manager_environment
from nni_snn.files.archfile import arch_from_sample, make_arch
from nni_snn.files.genotype import genotype_from_sample
from nni_snn.files.runfolder import RunFolder
from nni_snn.networks import network_parameters
from nni_snn.registry import SEARCH_STRATEGIES
from nni_snn.train.lightning import RESULT_COUNTS, EpochReporter, final_metrics, trial_result
from nni_snn.train.memory import check_step


@contextlib.contextmanager
def _torch_threads(threads: int | None):
    """Cap torch's CPU threads for a block. Concurrent trials that each start one thread per core oversubscribe
    the CPU; the SNN's many small ops then wait on preempted threads and an epoch can take ten times longer."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)  # when called in-process (tests), leave torch as it was


def train_sampled(model, *, dataset: str, data_dir: str | None = None, download: bool = False,
                  mirror: str | None = None, frames_by: str = "time", event_size: int | None = None,
                  subset_per_class: int | None = None,
                  epochs: int, batch_size: int, lr: float, seed: int, num_workers: int = 0, accelerator: str = "auto",
                  threads: int | None = None, output: str | None = None) -> dict:
    """Train one sampled fixed SNN and report it to NNI; the function ``FunctionalEvaluator`` calls in a trial.

    ``model`` is the plain ``nn.Module`` NNI built from ``SNNDartsSpace`` under the trial's sample. Every epoch goes
    to ``nni.report_intermediate_result``, the last one to ``nni.report_final_result`` (``default`` = validation
    accuracy). Writes ``metrics.json`` (and ``arch.json`` when NNI's sample is known) and TensorBoard logs into
    ``output``, else the trial's folder, else nowhere. ``threads`` caps torch's CPU threads. Returns the metrics.
    """
    from nni_snn.commands.retrain import train_fixed
    from nni_snn.experiment.trial import output_dir

    folder = Path(output) if output else output_dir()
    # No channel swapping needed here: in a multi-trial trial NNI's default channel talks to the manager.
    reporter = EpochReporter(report=nni.report_intermediate_result)
    # Trained as retrain trains a network (its defaults: DARTS's gradient clip, no drop-path), on one device:
    # parallelism comes from the experiment's trial concurrency. No checkpoints: a trial only ranks its network;
    # the winner is retrained from arch.json.
    recipe = RetrainOptions(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, num_workers=num_workers,
                            accelerator=accelerator, progress=False)
    with _torch_threads(threads), contextlib.ExitStack() as stack:
        pl.seed_everything(seed, workers=True, verbose=False)  # same seed in every trial: only the network differs
        data = load_dataset(dataset, data_dir, download, timesteps=model.timesteps, frames_by=frames_by,
                            event_size=event_size, subset_per_class=subset_per_class, seed=seed, mirror=mirror)
        weight_half, alpha_half = split_for_search(data.train, seed)
        logs = folder or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nni-snn-trial-")))
        train_fixed(model, weight_half, alpha_half, num_classes=data.num_classes, opts=recipe, output=logs,
                    reporter=reporter, checkpoints=False)
    metrics = final_metrics(reporter, network_parameters(model))
    nni.report_final_result(trial_result(reporter.history[-1]))
    if folder is not None:
        _write_trial_files(folder, model, metrics)
    return metrics


def _write_trial_files(folder: Path, model, metrics: dict) -> None:
    run = RunFolder(folder)
    run.write_metrics(metrics)
    # Inside a trial NNI's current parameter is the frozen model space; its sample is this network's.
    sample = getattr(nni.get_current_parameter(), "sample", None)
    if sample:
        run.write_arch(arch_from_sample(
            sample, model,
            results={k: metrics[k] for k in ("accuracy", *RESULT_COUNTS, "params", "params_with_auxiliary_head")}))


def network_key(sample: dict) -> str:
    """Samples that differ only in operations of unchosen edges build the same network: key them by genotype."""
    return json.dumps(genotype_from_sample(sample), sort_keys=True)


def random_strategy(*, seed: int, **unused):
    """NNI's ``Random``, deduplicated (registered as ``random`` in :data:`nni_snn.registry.SEARCH_STRATEGIES`)."""
    from nni.nas.strategy import Random

    return Random(dedup=True, seed=seed)


def evolution_strategy(*, trials: int, concurrency: int, seed: int, population: int | None = None,
                       sample_size: int | None = None):
    """NNI's ``RegularizedEvolution`` (registered as ``evolution``). Half the trials seed the population (Real et
    al. use 100 and tournaments of 25, a quarter of it). NNI mutates from the finished population as soon as a worker
    is free: with fewer individuals than concurrent trials it would pick a parent from an empty population and fail."""
    from nni.nas.strategy import RegularizedEvolution

    population = population or min(100, max(2, concurrency, trials // 2))
    sample_size = sample_size or min(population, max(2, population // 4))
    if population < concurrency:
        raise ValueError(f"evolution population ({population}) must be at least the concurrency ({concurrency})")
    return RegularizedEvolution(population_size=population, sample_size=sample_size, seed=seed)


def make_strategy(name: str, *, trials: int, concurrency: int, seed: int, population: int | None = None,
                  sample_size: int | None = None):
    """The strategy registered as ``name`` (:data:`nni_snn.registry.SEARCH_STRATEGIES`), behind a filter that never
    trains the same network twice.

    NNI deduplicates samples, but a sample also names operations for the edges its nodes did not choose, so two
    different samples can be one network (mutation in evolution often touches only such unused choices).
    """
    from nni.nas.strategy.middleware import Chain, Filter

    strategy = SEARCH_STRATEGIES.entry(name).load()(trials=trials, concurrency=concurrency, seed=seed,
                                                      population=population, sample_size=sample_size)

    seen: set[str] = set()

    def new_network(model) -> bool:  # runs in the strategy's thread only
        key = network_key(model.sample)
        if key in seen:
            return False
        seen.add(key)
        return True

    return Chain(strategy, Filter(new_network))


def _config(opts: MultitrialOptions):
    """The experiment's config: NNI's training-service engine (one process per trial) on the local machine."""
    from nni.nas.experiment import NasExperimentConfig

    from nni_snn.train.hardware import uses_cuda

    config = NasExperimentConfig("ts", "simplified", "local")
    config.experiment_name = f"nni-snn multitrial ({opts.search_strategy}, {opts.dataset})"
    config.trial_concurrency = opts.concurrency
    config.max_trial_number = opts.trials
    if opts.duration:
        config.max_experiment_duration = opts.duration
    if opts.working_dir:
        config.experiment_working_directory = str(opts.working_dir)
    # One GPU per trial: NNI then places trials on free GPUs (CUDA_VISIBLE_DEVICES) instead of letting every trial
    # see every GPU; "active" GPUs (a display, other users' jobs) count as free, or trials could wait forever.
    if uses_cuda(opts.accelerator):
        config.trial_gpu_number = 1
        config.training_service.use_active_gpu = True
    # The trial command is "<python> -m nni.nas.execution.training_service trial", run in this process's working
    # directory; NNI fills <python> with sys.executable, so trials use this interpreter and its packages.
    return config


class _QuietLegacySpace(logging.Filter):
    """NNI's web UI lists the search space in its older format, which has no InputChoice (2 of k inputs): NNI warns
    once per node and leaves those choices out of that view. Nothing for a user to do; keep the log readable."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Cannot convert CategoricalMultiple")


def _trial_records(experiment) -> list[dict]:
    """Every trial as the manager knows it: status, sample (from the submitted model), final result, duration."""
    records = []
    for job in experiment.list_trial_jobs():
        # The trial's parameter is the frozen model space NNI submitted, stored as JSON by the manager.
        sample = nni.load(nni.dump(job.hyperParameters[0].parameters)).sample if job.hyperParameters else None
        final = job.finalMetricData[-1].data if job.finalMetricData else None
        final = final if isinstance(final, dict) or final is None else {"default": final}
        ended = job.endTime is not None and job.endTime > 0
        records.append({
            "trial_id": job.trialJobId, "sequence": job.sequenceId, "status": job.status,
            "genotype": genotype_from_sample(sample) if sample else None, "nni_sample": sample,
            "accuracy": final.get("default") if final else None,
            **{key: final.get(key) if final else None for key in RESULT_COUNTS},
            "duration": round((job.endTime - job.startTime) / 1000, 1) if ended and job.startTime else None,
            "final": final,
        })
    return sorted(records, key=lambda r: r["sequence"])


def run_multitrial(opts: MultitrialOptions, before_stop=None) -> dict:
    """Run a multi-trial search to completion; writes ``arch.json``, ``metrics.json`` and cell pictures.

    arch.json and metrics.json record ``opts.search_strategy`` as ``strategy``. The NNI manager (REST API and web UI)
    listens on ``opts.port`` while the experiment runs; ``before_stop(experiment)``, if given, is called with the finished,
    still running ``NasExperiment``, which is then stopped before this returns. Returns the summary (what
    ``metrics.json`` holds).
    """
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.experiment import NasExperiment

    from nni_snn.commands.search import derived_params, write_search_outputs
    from search_spaces import SNNDartsSpace

    nas_log = logging.getLogger("nni.nas.experiment.experiment")
    if not any(isinstance(f, _QuietLegacySpace) for f in nas_log.filters):
        nas_log.addFilter(_QuietLegacySpace())
    strategy = make_strategy(opts.search_strategy, trials=opts.trials, concurrency=opts.concurrency, seed=opts.seed,
                             population=opts.population, sample_size=opts.sample_size)
    data = load_for(opts, opts.timesteps)  # fails here, before the manager
    check_step("retrain", opts, data)  # each trial trains a fixed network as retrain does
    space = SNNDartsSpace(width=opts.width, num_cells=opts.cells, timesteps=opts.timesteps, attention=opts.attention,
                          num_classes=data.num_classes, in_channels=data.in_channels)
    # The evaluator travels to each trial as JSON: the function by its import path, the options as plain values.
    evaluator = FunctionalEvaluator(
        train_sampled, dataset=opts.dataset, data_dir=str(opts.data_dir) if opts.data_dir else None,
        download=bool(opts.download), mirror=opts.mirror, frames_by=opts.frames_by, event_size=opts.event_size,
        subset_per_class=opts.subset_per_class, epochs=opts.epochs, batch_size=opts.batch_size, lr=opts.lr,
        seed=opts.seed, num_workers=opts.num_workers, accelerator=opts.accelerator,
        threads=opts.threads or max(1, (os.cpu_count() or 1) // opts.concurrency))
    experiment = NasExperiment(space, evaluator, strategy, _config(opts))

    output = Path(opts.output)
    stopped = False
    try:
        # Blocks until the strategy is done and every submitted trial has ended. NNI catches Ctrl-C itself: it
        # stops the experiment and returns None.
        with manager_environment(opts.host):  # the manager listens on loopback unless --host says otherwise
            ran = experiment.run(port=opts.port)
        if ran is None:
            stopped = True
            raise KeyboardInterrupt
        trials = _trial_records(experiment)
        # NNI ranks the trained models by their final "default" (validation accuracy), highest first.
        top = experiment.export_top_models(top_k=1, formatter="dict")
        if before_stop is not None:
            before_stop(experiment)
    finally:
        if not stopped:
            experiment.stop()
    if not top:
        raise MultitrialError(f"no trial succeeded ({len(trials)} ran); see the trials' logs under "
                              f"{Path(experiment.config.experiment_working_directory).expanduser() / experiment.id}")

    best_sample = top[0]
    best = next(r for r in trials if r["nni_sample"] == best_sample and r["status"] == "SUCCEEDED")
    recorded = ("dataset", "subset_per_class", "width", "cells", "epochs", "batch_size", "seed", "lr", "trials",
                "concurrency", "duration", *(("frames_by", "event_size") if data.frames else ()))
    arch = make_arch(attention=opts.attention, timesteps=opts.timesteps,
                     genotype=genotype_from_sample(best_sample), nni_sample=best_sample,
                     search={"strategy": opts.search_strategy, "experiment_id": experiment.id,
                             **{k: getattr(opts, k) for k in recorded}})
    params = derived_params(arch, opts, data)
    arch["results"] = {"accuracy": best["accuracy"], **{k: best[k] for k in RESULT_COUNTS}, **params,
                       "trial_id": best["trial_id"]}
    summary = {"strategy": opts.search_strategy, "experiment_id": experiment.id, "best": arch["results"],
               "accuracy": best["accuracy"], **{k: best[k] for k in RESULT_COUNTS}, **params, "trials": trials}
    write_search_outputs(output, arch, summary)
    return summary
