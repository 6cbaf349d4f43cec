"""A run's folder: its layout, the one reader of config files (a run's config.yaml, a user's --config, an nnictl
config: bounded, one-line errors), atomic writes, and what --overwrite removes."""

from __future__ import annotations

import json

import pytest

from nni_snn.errors import ExperimentError, UsageError
from nni_snn.files.runfolder import RunFolder, read_mapping, write_json_atomic


def test_the_layout_is_the_documented_one(tmp_path):
    run = RunFolder(tmp_path)
    names = {"arch": run.arch, "metrics": run.metrics, "config": run.config, "resume": run.resume_checkpoint,
             "best": run.best_checkpoint, "tensorboard": run.tensorboard, "retrain": run.retrain.metrics,
             "front": run.front(0.5).arch, "picture": run.picture("normal")}
    assert {k: str(v.relative_to(tmp_path)) for k, v in names.items()} == {
        "arch": "arch.json", "metrics": "metrics.json", "config": "config.yaml", "resume": "checkpoints/last.ckpt",
        "best": "checkpoints/best.ckpt", "tensorboard": "tensorboard", "retrain": "retrain/metrics.json",
        "front": "front/lambda-0.5/arch.json", "picture": "normal.png"}
    assert not any(tmp_path.iterdir())  # naming the files creates nothing


def test_a_config_is_written_and_read_back(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.write_config({"width": 8, "dataset": "digits", "arch": None})
    assert run.read_config() == {"width": 8, "dataset": "digits", "arch": None}
    assert run.config.read_text().startswith("width: 8\n")  # the options' order, not sorted


@pytest.mark.parametrize("text, says", [
    ("a: [1", "not valid YAML/JSON"),
    ("[1, 2]", "expected a mapping of option names to values"),
    ("[" * 100_000, "not valid YAML/JSON"),
])
def test_every_config_reader_fails_in_one_line(tmp_path, text, says):
    run = RunFolder(tmp_path)
    run.config.write_text(text)
    with pytest.raises(UsageError) as caught:
        run.read_config()
    assert str(caught.value).startswith(f"{run.config}: {says}") and "\n" not in str(caught.value)
    with pytest.raises(UsageError, match=f"^--config {run.config}: {says}"):
        read_mapping(run.config, f"--config {run.config}")


def test_a_config_that_is_no_file_or_too_large_is_refused(tmp_path):
    with pytest.raises(UsageError, match="cannot read .No such file"):
        RunFolder(tmp_path).read_config()
    with pytest.raises(ExperimentError, match="^experiment config .*: cannot read .Is a directory"):
        read_mapping(tmp_path, f"experiment config {tmp_path}", error=ExperimentError)
    (tmp_path / "config.yaml").write_text("a: 1\n" * (1 << 20))
    with pytest.raises(UsageError, match="cannot read .larger than 4 MiB"):
        RunFolder(tmp_path).read_config()


def test_export_reads_a_runs_config_through_the_one_reader(tmp_path):
    from nni_snn.commands.export import load_run
    from nni_snn.errors import ExportError

    (tmp_path / "config.yaml").write_text("- not a mapping\n")
    with pytest.raises(ExportError, match="config.yaml: expected a mapping"):
        load_run(tmp_path)


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"accuracy": 0.5})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"accuracy": object()})  # not JSON-serialisable: fails mid-write
    assert json.loads(path.read_text()) == {"accuracy": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_runs_are_found_below_a_folder_in_path_order(tmp_path):
    for folder in ("b", "a/Z", "a"):
        RunFolder(tmp_path / folder).write_arch({})
    assert [run.path for run in RunFolder.below(tmp_path)] == [tmp_path / "a", tmp_path / "a/Z", tmp_path / "b"]
    assert [run.path for run in RunFolder.below(tmp_path / "a")] == [tmp_path / "a"]


def test_removing_a_run_leaves_the_input_logs_and_other_files(tmp_path):
    run = RunFolder(tmp_path)
    for path in (run.arch, run.metrics, run.config, run.picture("reduce"), run.resume_checkpoint,
                 run.retrain.best_checkpoint, run.retrain.metrics, run.tensorboard / "version_0" / "events",
                 tmp_path / "notes.txt"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    assert run.run_files({run.arch.resolve()}) == ["metrics.json", "checkpoints/last.ckpt", "retrain/metrics.json",
                                                   "retrain/checkpoints/best.ckpt"]
    run.remove_run({run.arch.resolve()})
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["arch.json", "notes.txt", "tensorboard/version_0/events"]


def test_the_pictures_removed_are_the_cells_drawn():
    from nni_snn.files import genotype, runfolder

    assert runfolder.CELL_TYPES == genotype.CELL_TYPES
