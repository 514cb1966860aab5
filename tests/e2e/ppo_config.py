"""The environment and Hydra overrides that make verl 0.9.1 `main_ppo` run on a 2-core CPU machine.

Each setting is here for a reason found by running it (see ../shared/docs/verl-0.9.1.md, 8 and 9):
the CPU platform and backend fix come from `verl_cpu_support` (tests/e2e/cpu_support), Ray is told
it has one GPU so verl's placement groups fit, vLLM runs eagerly without sleep mode, and every size
is tiny so two GRPO steps take about a minute and a half.
"""

from __future__ import annotations

from pathlib import Path

from runner import private_env

from dupo_verl.demo.ppo import (
    CPU_ENV,
    with_overrides,  # noqa: F401 (the e2e tier's import point)
)
from dupo_verl.demo.ppo import cpu_overrides as cpu_recipe


def cpu_env(workdir: Path, shared_cache: Path | None = None) -> dict[str, str]:
    """Environment for the driver and (inherited through Ray) every worker and vLLM process."""
    return {
        **private_env(workdir, shared_cache),
        **CPU_ENV,
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_DEDUP_LOGS": "0",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }


def cpu_overrides(
    *,
    model_path: Path,
    train_files: Path,
    val_files: Path,
    workdir: Path,
    experiment: str,
    use_v1: bool = True,
    steps: int = 2,
    batch_size: int = 4,
    n: int = 2,
    prompt_length: int = 256,
    response_length: int = 32,
    max_model_len: int = 1024,
) -> list[str]:
    """Overrides for a tiny GRPO run on CPU; task-specific ones are appended by the caller."""
    micro = batch_size * n
    return [
        "algorithm.adv_estimator=grpo",
        f"data.train_files={train_files}",
        f"data.val_files={val_files}",
        f"data.train_batch_size={batch_size}",
        f"data.val_batch_size={batch_size}",
        f"data.max_prompt_length={prompt_length}",
        f"data.max_response_length={response_length}",
        "data.filter_overlong_prompts=True",
        "data.truncation=error",
        "data.dataloader_num_workers=0",
        "data.shuffle=False",
        f"actor_rollout_ref.model.path={model_path}",
        "actor_rollout_ref.actor.strategy=fsdp2",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={batch_size}",
        f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={micro}",
        "actor_rollout_ref.actor.use_kl_loss=False",
        "actor_rollout_ref.actor.use_torch_compile=False",
        "actor_rollout_ref.actor.optim.lr=1e-4",
        "actor_rollout_ref.rollout.name=vllm",
        f"actor_rollout_ref.rollout.n={n}",
        f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={micro}",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.load_format=auto",
        f"actor_rollout_ref.rollout.max_model_len={max_model_len}",
        "actor_rollout_ref.rollout.max_num_seqs=16",
        f"actor_rollout_ref.rollout.max_num_batched_tokens={2 * max_model_len}",
        "reward.num_workers=1",
        f"trainer.use_v1={str(use_v1).lower()}",
        "trainer.n_gpus_per_node=1",
        "trainer.nnodes=1",
        f"trainer.total_training_steps={steps}",
        "trainer.total_epochs=1",
        "trainer.logger=['console','file']",
        "trainer.val_before_train=False",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        "trainer.project_name=dupo_e2e",
        f"trainer.experiment_name={experiment}",
        f"trainer.default_local_dir={workdir / 'checkpoints'}",
        f"trainer.rollout_data_dir={workdir / 'rollouts'}",
        *cpu_recipe(),
    ]


def custom_reward(path: str = "pkg://reward_fns", name: str = "compute_score") -> list[str]:
    """Score rollouts with a plain function (the naive reward manager)."""
    return [f"reward.custom_reward_function.path={path}", f"reward.custom_reward_function.name={name}"]
