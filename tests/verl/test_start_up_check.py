"""A task that cannot be scored in likelihood mode stops the job at start-up (issue 15, section 1).

The `dupo_*` trainers check every DuPO-scored row of verl's train and validation datasets right
after verl builds them (`_init_dataloader`, in the trainer's constructor, before any worker starts),
not at the step that first samples the row. Run here on verl's real `RLHFDataset` over a parquet
file, through the trainer's real `_init_dataloader`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from verl_helpers import TASK, PlusTask, plus_row, verl_config

from dupo_verl.tasks import DualQuestion, DualReply, LikelihoodUnsupported, register_task
from dupo_verl.verl.trainer import DuPOTrainerSync, check_datasets_dual_mode

NO_LIKELIHOOD = "verl_test_plus_no_likelihood"
ODD_VALUE = "verl_test_plus_odd_value"


@register_task(NO_LIKELIHOOD)
class NoLikelihoodTask(PlusTask):
    def check_likelihood(self) -> None:
        raise LikelihoodUnsupported("the dual replies in free prose")


@register_task(ODD_VALUE)
class OddValueTask(PlusTask):
    def dual_reply(self, dual: DualQuestion) -> DualReply:
        if dual.value == "13":
            raise LikelihoodUnsupported("13 cannot be written as a reply")
        return super().dual_reply(dual)


def _row(index: int, task: str = TASK, agent_name: str = "dupo_agent", b: int = 2) -> dict:
    row = plus_row(index, 1, b, agent_name=agent_name)
    row["extra_info"]["dupo"]["task"] = task
    return row


def _parquet(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_parquet(path)
    return path


def _trainer(tmp_path: Path, model: Path, train: list[dict], val: list[dict], *overrides: str) -> DuPOTrainerSync:
    """A `dupo_sync` trainer with only what verl's `_init_dataloader` reads (no workers, no Ray)."""
    from transformers import AutoTokenizer

    config = verl_config(
        model,
        f"data.train_files={_parquet(tmp_path / 'train.parquet', train)}",
        f"data.val_files={_parquet(tmp_path / 'val.parquet', val)}",
        "data.train_batch_size=2",
        "data.val_batch_size=2",
        "data.dataloader_num_workers=0",
        "trainer.total_training_steps=2",
        *overrides,
    )
    trainer = object.__new__(DuPOTrainerSync)
    trainer.config = config
    trainer.tokenizer = AutoTokenizer.from_pretrained(model)
    trainer.processor = None
    trainer.trainer_mode, trainer.parameter_sync_step = "sync", 1  # set by verl's constructor
    return trainer


def test_unsupported_task_in_a_late_row_stops_at_start_up(tmp_path, tiny_model_path):
    # the unsupported task's first row would be sampled only after 39 others (step 20 at batch 2)
    train = [_row(i) for i in range(39)] + [_row(39, NO_LIKELIHOOD)]
    trainer = _trainer(tmp_path, tiny_model_path, train, [_row(100)], "+dupo.dual_mode=likelihood")
    with pytest.raises(LikelihoodUnsupported, match=r"the train dataset row 39 .*verl_test_plus_no_likelihood.*free prose"):
        trainer._init_dataloader()


def test_one_unwritable_value_is_named_with_its_row(tmp_path, tiny_model_path):
    val = [_row(200, ODD_VALUE, b=2), _row(201, ODD_VALUE, b=13)]
    trainer = _trainer(tmp_path, tiny_model_path, [_row(0)] * 2, val, "+dupo.dual_mode=likelihood")
    with pytest.raises(LikelihoodUnsupported, match=r"the val dataset row 1 \(index=201.*13 cannot be written"):
        trainer._init_dataloader()


def test_supported_rows_and_other_modes_pass(tmp_path, tiny_model_path):
    train = [_row(i) for i in range(4)]
    # rows rolled out by single_turn_agent are not DuPO-scored (naive reward manager): not checked
    val = [_row(100, NO_LIKELIHOOD, agent_name="single_turn_agent")]
    trainer = _trainer(tmp_path, tiny_model_path, train, val, "+dupo.dual_mode=likelihood")
    trainer._init_dataloader()
    assert len(trainer.train_dataset) == 4
    assert check_datasets_dual_mode(trainer.config, {"train": trainer.train_dataset, "val": trainer.val_dataset}) == 4
    # sample mode asks every task: nothing to check
    (tmp_path / "s").mkdir()
    sampled = _trainer(tmp_path / "s", tiny_model_path, [_row(0, NO_LIKELIHOOD)] * 2, val)
    sampled._init_dataloader()


def test_the_agent_loop_yaml_mode_is_checked_too(tmp_path, tiny_model_path, agent_loop_yaml):
    """`dual_mode` set in the agent-loop YAML's `dupo:` mapping (not on the command line) counts."""
    entries = yaml.safe_load(Path(agent_loop_yaml).read_text())
    for entry in entries:
        if entry["name"] == "dupo_agent":
            entry["dupo"] = {**(entry.get("dupo") or {}), "dual_mode": "likelihood"}
    custom = tmp_path / "agent_loops.yaml"
    custom.write_text(yaml.safe_dump(entries))
    (tmp_path / "d").mkdir()
    trainer = _trainer(
        tmp_path / "d", tiny_model_path, [_row(0, NO_LIKELIHOOD)] * 2, [_row(1)],
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={custom}",
    )
    with pytest.raises(LikelihoodUnsupported, match="free prose"):
        trainer._init_dataloader()


# -- the same check under any trainer (V0, plain V1): the agent loop and the reward manager ---------


def _likelihood_config(tmp_path: Path, model: Path, train: list[dict], val: list[dict], *overrides: str):
    (tmp_path / "files").mkdir(exist_ok=True)
    return verl_config(
        model,
        f"data.train_files={_parquet(tmp_path / 'files' / 'train.parquet', train)}",
        f"data.val_files=[{_parquet(tmp_path / 'files' / 'val.parquet', val)}]",
        "+dupo.dual_mode=likelihood",
        *overrides,
    )


async def test_the_agent_loop_checks_the_data_files_before_its_first_row(tmp_path, tiny_lm, tiny_model_path):
    """Built by verl's own instantiate path (as `AgentLoopWorker` does), `dupo_agent` runs the
    check over the job's parquet files: a late unsupported row stops the first rollout, named
    (hydra wraps the error, with its message, as it would in verl's worker)."""
    from hydra.errors import InstantiationException
    from verl_helpers import make_server, run_dupo_loop

    from dupo_verl.verl import startup

    startup._CHECKED.clear()
    train = [_row(i) for i in range(39)] + [_row(39, NO_LIKELIHOOD)]
    config = _likelihood_config(tmp_path, tiny_model_path, train, [_row(100)])
    server = make_server(tiny_lm, config)
    with pytest.raises(InstantiationException, match=r"the train file .*train.parquet row 39 .*free prose"):
        await run_dupo_loop(config, server, _row(0))
    assert not server.calls  # nothing was generated


def test_the_check_runs_once_per_process_and_only_where_dupo_scores(tmp_path):
    from dupo_verl.scoring import DualOptions
    from dupo_verl.verl import startup

    startup._CHECKED.clear()
    likelihood = DualOptions.from_mapping({"dual_mode": "likelihood"})
    data = {"train_files": str(_parquet(tmp_path / "t.parquet", [_row(i) for i in range(3)])),
            "val_files": [str(_parquet(tmp_path / "v.parquet", [_row(9, NO_LIKELIHOOD, agent_name="single_turn_agent")])),
                          str(tmp_path / "missing.parquet"), "hdfs://elsewhere/x.parquet"]}
    assert [split for split, _ in startup.data_files(data)] == ["train", "val"]  # only local parquet files
    assert startup.check_files_once(data, likelihood, "dupo_agent", all_rows=False) == 3
    assert startup.check_files_once(data, likelihood, "dupo_agent", all_rows=False) == 0  # once per process
    (tmp_path / "t.parquet").rename(tmp_path / "moved.parquet")  # a repeat reads no file (once per rollout)
    assert startup.check_files_once(data, likelihood, "dupo_agent", all_rows=False) == 0
    (tmp_path / "moved.parquet").rename(tmp_path / "t.parquet")
    with pytest.raises(LikelihoodUnsupported, match=r"the val file .*v.parquet row 0"):
        startup.check_files_once(data, likelihood, "dupo_agent", all_rows=True)  # the reward manager scores all rows
    assert startup.check_files_once(data, DualOptions(), "dupo_agent", all_rows=True) == 0  # sample mode: nothing
    assert startup.check_files_once({}, likelihood, None, all_rows=True) == 0


async def test_the_reward_manager_checks_the_data_files_when_built(tmp_path, tiny_lm, tiny_model_path):
    from test_reward_manager import reward_config

    from dupo_verl.verl import startup
    from dupo_verl.verl.reward_manager import DuPORewardManager

    startup._CHECKED.clear()
    train = _parquet(tmp_path / "train.parquet", [_row(0), _row(1, NO_LIKELIHOOD, agent_name="single_turn_agent")])
    config = reward_config(tiny_model_path, "+dupo.dual_mode=likelihood", f"data.train_files={train}")
    with pytest.raises(LikelihoodUnsupported, match=r"the train file .*row 1 .*free prose"):
        DuPORewardManager(config, tiny_lm.tokenizer, None, reward_router_address="127.0.0.1:1",
                          reward_model_tokenizer=tiny_lm.tokenizer)
