"""The `python -m verl.trainer.main_ppo` command of one demo run (GRPO), per method.

Methods differ only in their training rows and reward (same budget, same starting model):
- `dupo`: rows name the `dupo_agent` loop (self-dual reward, no label; the rows carry WRONG
  labels in `reward_model.ground_truth` to show none reaches the reward);
- `shuffled`: rows name `dupo_shuffled_agent` (a coin with DuPO's running reward rate);
- `oracle`: rows name `single_turn_agent` and carry the gold label, scored by
  `reward.custom_reward_function` = `reward_fns.compute_score`;
- `dupo_frozen` (a remedy, opt-in): the same label-free DuPO reward, but the dual is a FROZEN copy
  of the warm-started model served by verl's reward-model server (the `dupo` reward manager), so
  training the primal cannot degrade the judge. Every row, validation included, is then scored by
  that manager; the held-out accuracy comes from its `dupo_gold_acc` metric (true labels).
- `dupo_alternate` (a remedy, opt-in): `dupo`'s rows plus one `two_sum_inverse` row per problem
  (the dual prompt as a primal, judged by the live policy's own A+B=), all on `dupo_agent`. Both
  roles train label-free, so the judge is trained too instead of decaying. Same command as `dupo`.
- `dupo_ensemble` (a remedy, opt-in): `dupo`'s reward from an ensemble of two duals, hide B (A+V=S)
  and hide A (asked as B+V=S, the same format), both answered by the live policy; the reward is
  paid only when both rebuild their operand (`+dupo.dual_aggregate=min`). A wrong sum one dual
  confirms by a mirrored slip is mostly caught by the other.
- `dupo_likelihood`: `dupo`'s rows, the dual asked in likelihood mode (`+dupo.dual_mode=likelihood`:
  the reward is exp(mean log-prob) of the true hidden operand, one prefill, no decoding).
- `dupo_anchored`: `dupo`'s rows judged by the live self-dual AND a frozen copy of the warm start
  (verl's reward-model server, as `dupo_frozen`), both must accept (`+dupo.judge=anchored`,
  `dual_aggregate=min`); `dupo_ensemble_anchored`: the ensemble's two duals, asked of both judges.
  `dupo_frozen_ensemble`: the ensemble's two duals asked of the frozen copy alone (`dupo_frozen`'s
  wiring): the judge cannot decay with the policy (`dupo_frozen`'s recall) and a sum is paid only
  when both frozen duals rebuild their operand (the ensemble's precision), with no live verdict.
  Their validation rows run on `dupo_agent` too (the `dupo` manager needs each row's live verdict);
  the held-out accuracy comes from `dupo_gold_acc` (true labels), as for `dupo_frozen`.
Validation rows (held-out primal and dual prompts, true labels) always use `single_turn_agent`
and `reward_fns.compute_score`, greedily: that is the accuracy curve. Validation never trains.

On a machine without a GPU the CPU recipe of verl-0.9.1 (docs section 9) is added: verl's CPU
platform from the `verl_cpu_support` module (tests/e2e/cpu_support, installed in `.venv-e2e`), a
fake Ray GPU, vLLM-CPU settings and small engine sizes.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dupo_verl.tasks.registry import TASK_MODULES_ENV, allowed_task_modules

METHOD_AGENTS = {
    "dupo": "dupo_agent",
    "shuffled": "dupo_shuffled_agent",
    "oracle": "single_turn_agent",
    "dupo_frozen": "single_turn_agent",
    "dupo_alternate": "dupo_agent",
    "dupo_ensemble": "dupo_agent",
    "dupo_likelihood": "dupo_agent",
    "dupo_anchored": "dupo_agent",
    "dupo_ensemble_anchored": "dupo_agent",
    "dupo_frozen_ensemble": "single_turn_agent",
}
# (dual questions per rollout, how their accuracies combine); every other method asks one (mean)
METHOD_DUALS = {"dupo_ensemble": (2, "min"), "dupo_anchored": (1, "min"), "dupo_ensemble_anchored": (2, "min"),
                "dupo_frozen_ensemble": (2, "min")}
# more `+dupo` options of a method (only where they differ from the defaults)
METHOD_OPTIONS = {
    "dupo_likelihood": ("+dupo.dual_mode=likelihood",),
    "dupo_anchored": ("+dupo.judge=anchored",),
    "dupo_ensemble_anchored": ("+dupo.judge=anchored",),
}
# methods whose judge includes a frozen copy of the warm start behind verl's reward-model server
FROZEN_JUDGE = ("dupo_frozen", "dupo_anchored", "dupo_ensemble_anchored", "dupo_frozen_ensemble")
ANCHORED = ("dupo_anchored", "dupo_ensemble_anchored")
CPU_SUPPORT_MODULE = "verl_cpu_support"
# verl's CPU platform (docs section 9); VERL_ENGINE_DEVICE is only a key of verl's engine registry
CPU_ENV = {
    "VERL_PLATFORM": "cpu",
    "VERL_USE_EXTERNAL_MODULES": CPU_SUPPORT_MODULE,
    "VERL_ENGINE_DEVICE": "cuda",
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_CPU_KVCACHE_SPACE": "1",
}


@dataclass(frozen=True)
class GRPOSettings:
    """The RL budget shared by every method (one main_ppo run)."""

    steps: int = 24
    batch_size: int = 32  # prompts per step
    group_size: int = 8  # rollouts per prompt (GRPO group)
    mini_batches: int = 1  # optimizer steps per training step
    lr: float = 3e-4
    temperature: float = 1.0
    entropy_coeff: float = 0.0
    clip_ratio: float = 0.2
    test_freq: int = 8
    prompt_length: int = 32
    response_length: int = 8
    dual_samples: int = 1
    dual_temperature: float = 0.0
    dual_max_tokens: int = 8
    rollout_dtype: str = "bfloat16"  # on a GPU; on CPU `CPU_PRECISION` runs everything in float32
    save_final: bool = True
    seed: int = 0
    data_seed: int | None = None  # order of the training prompts (None: `seed`); a continued run draws a new one

    def validate(self) -> None:
        for name in ("steps", "batch_size", "group_size", "mini_batches", "prompt_length", "response_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.group_size < 2:
            raise ValueError("GRPO needs group_size >= 2 (advantages are relative to the group)")
        if self.batch_size % self.mini_batches:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by mini_batches {self.mini_batches}")
        if not self.dual_samples >= 1 or not self.dual_max_tokens >= 1:
            raise ValueError(f"dual_samples and dual_max_tokens must be >= 1, got {self.dual_samples} and "
                             f"{self.dual_max_tokens}")
        # `not x > 0`, not `x <= 0`: NaN fails every comparison and would reach main_ppo
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        for name in ("temperature", "dual_temperature"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")


@dataclass(frozen=True)
class RunPaths:
    """Files of one run."""

    model: Path
    train_files: Path
    val_files: Sequence[Path]
    agent_loop_config: Path
    workdir: Path
    frozen_dual: Path | None = None  # `dupo_frozen`'s judge (None: `model`, the warm start)

    @property
    def checkpoints(self) -> Path:
        return self.workdir / "checkpoints"

    @property
    def rollouts(self) -> Path:
        return self.workdir / "rollouts"

    @property
    def metrics(self) -> Path:
        return self.workdir / "metrics.jsonl"


def cpu_support_available() -> bool:
    """True when verl's CPU platform module can be imported (the e2e venv has it)."""
    return importlib.util.find_spec(CPU_SUPPORT_MODULE) is not None


def overrides(method: str, paths: RunPaths, grpo: GRPOSettings, device: str = "cpu") -> list[str]:
    """Hydra overrides of `main_ppo` for `method` (a key of `METHOD_AGENTS`)."""
    if method not in METHOD_AGENTS:
        raise ValueError(f"unknown method {method!r}; RL methods: {sorted(METHOD_AGENTS)}")
    grpo.validate()
    questions, aggregate = METHOD_DUALS.get(method, (1, None))
    samples = grpo.batch_size * grpo.group_size
    mini = grpo.batch_size // grpo.mini_batches
    max_len = grpo.prompt_length + grpo.response_length + max(grpo.dual_max_tokens, 16) + 32
    val_files = ",".join(str(p) for p in paths.val_files)
    out = [
        "algorithm.adv_estimator=grpo",
        "algorithm.use_kl_in_reward=False",
        f"data.train_files={paths.train_files}",
        f"data.val_files=[{val_files}]",
        f"data.train_batch_size={grpo.batch_size}",
        f"data.max_prompt_length={grpo.prompt_length}",
        f"data.max_response_length={grpo.response_length}",
        "data.filter_overlong_prompts=False",
        "data.truncation=error",
        "data.dataloader_num_workers=0",
        "data.shuffle=True",
        f"data.seed={grpo.seed if grpo.data_seed is None else grpo.data_seed}",
        f"actor_rollout_ref.model.path={paths.model}",
        "actor_rollout_ref.actor.strategy=fsdp2",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={mini}",
        f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={mini * grpo.group_size}",  # one micro batch per mini batch
        "actor_rollout_ref.actor.use_kl_loss=False",
        f"actor_rollout_ref.actor.entropy_coeff={grpo.entropy_coeff}",
        f"actor_rollout_ref.actor.clip_ratio={grpo.clip_ratio}",
        "actor_rollout_ref.actor.use_torch_compile=False",
        f"actor_rollout_ref.actor.optim.lr={grpo.lr}",
        f"actor_rollout_ref.actor.data_loader_seed={grpo.seed}",
        f"actor_rollout_ref.actor.fsdp_config.seed={grpo.seed}",
        "actor_rollout_ref.rollout.name=vllm",
        f"actor_rollout_ref.rollout.n={grpo.group_size}",
        f"actor_rollout_ref.rollout.temperature={grpo.temperature}",
        f"actor_rollout_ref.rollout.seed={grpo.seed}",
        f"actor_rollout_ref.rollout.dtype={grpo.rollout_dtype}",
        f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={samples}",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.load_format=auto",
        f"actor_rollout_ref.rollout.max_model_len={max_len}",
        f"actor_rollout_ref.rollout.max_num_seqs={min(256, samples)}",
        f"actor_rollout_ref.rollout.max_num_batched_tokens={max(1024, min(256, samples) * max_len)}",
        "actor_rollout_ref.rollout.val_kwargs.do_sample=False",
        "actor_rollout_ref.rollout.val_kwargs.temperature=0",
        "actor_rollout_ref.rollout.val_kwargs.n=1",
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={paths.agent_loop_config}",
        f"actor_rollout_ref.rollout.agent.default_agent_loop={METHOD_AGENTS[method]}",
        "reward.custom_reward_function.path=pkg://reward_fns",
        "reward.custom_reward_function.name=compute_score",
        "reward.num_workers=1",
        # the DuPO options of the agent loops (no gold label in the reward: hybrid_weight 0)
        f"+dupo.dual_questions_per_rollout={questions}",
        # only where it is not the default (mean), so outputs made before the option stay resumable
        *([f"+dupo.dual_aggregate={aggregate}"] if aggregate else []),
        f"+dupo.dual_samples={grpo.dual_samples}",
        f"+dupo.dual_temperature={grpo.dual_temperature}",
        f"+dupo.dual_max_tokens={grpo.dual_max_tokens}",
        "+dupo.hybrid_weight=0.0",
        *METHOD_OPTIONS.get(method, ()),
        "trainer.use_v1=true",
        "trainer.v1.trainer_mode=dupo_sync",
        f"trainer.total_training_steps={grpo.steps}",
        "trainer.total_epochs=1000",
        "trainer.logger=['console','file']",
        "trainer.val_before_train=True",
        f"trainer.test_freq={grpo.test_freq}",
        f"trainer.save_freq={grpo.steps if grpo.save_final else -1}",
        "actor_rollout_ref.actor.checkpoint.save_contents=['model','hf_model']",
        "trainer.resume_mode=disable",
        f"trainer.rollout_data_dir={paths.rollouts}",
        f"trainer.default_local_dir={paths.checkpoints}",
        "trainer.project_name=dupo_demo",
        f"trainer.experiment_name={method}_seed{grpo.seed}",
        "trainer.nnodes=1",
        "trainer.n_gpus_per_node=1",
    ]
    if device == "cpu":
        out = with_overrides(out, cpu_overrides())
    if method in FROZEN_JUDGE:
        out = with_overrides(out, frozen_dual_overrides(paths.frozen_dual or paths.model, max_len, samples, device))
    return out


def override_key(override: str) -> str:
    """`++a.b=1`, `+a.b=1`, `a.b=1` -> `a.b`."""
    return override.split("=", 1)[0].lstrip("+~")


def with_overrides(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    """`base` with the keys of `extra` replaced in place (same key) or appended (new key). Hydra
    would take the last of two values; replacing keeps one value per key, so the command a run
    logs (and `--resume` compares) says what the run used."""
    replaced = {override_key(item): item for item in extra}
    out = [replaced.pop(override_key(item), item) for item in base]
    return out + [item for item in extra if override_key(item) in replaced]


def frozen_dual_overrides(dual_model: Path, max_len: int, samples: int, device: str) -> list[str]:
    """The `dupo` reward manager with the dual served by verl's reward-model server (its own pool)."""
    out = [
        "reward.reward_manager.name=dupo",
        "reward.reward_model.enable=True",
        f"reward.reward_model.model_path={dual_model}",
        "reward.reward_model.rollout.name=vllm",
        "reward.reward_model.rollout.tensor_model_parallel_size=1",
        f"reward.reward_model.rollout.max_model_len={max_len}",
        f"reward.reward_model.rollout.max_num_seqs={min(256, samples)}",
        f"reward.reward_model.rollout.max_num_batched_tokens={max(1024, min(256, samples) * max_len)}",
        # with its own pool verl never wakes a sleeping reward model: keep it awake
        "reward.reward_model.rollout.free_cache_engine=False",
        # V1 hands dataset columns (extra_info) to the manager only with a separate pool
        "reward.reward_model.enable_resource_pool=True",
        "reward.reward_model.n_gpus_per_node=1",
        "reward.reward_model.nnodes=1",
    ]
    if device == "cpu":
        out += [
            "+ray_kwargs.ray_init.num_gpus=2",
            "reward.reward_model.rollout.enforce_eager=True",
            "+reward.reward_model.rollout.enable_sleep_mode=False",
            CPU_REWARD_MODEL_DTYPE,
        ]
    return out


# bf16 is emulated on CPUs without AVX512-BF16/AMX (this project's 2-core machine: a tiny model's
# forward+backward takes 6.0 s in bf16, 0.8 s in fp32). In float32 a two-sum GRPO step of the demo
# takes 14.2 s instead of 37.7 s (update_actor 5.5 s instead of 25.8 s), and the rollout's
# log-probs match the actor's (mean |diff| 3e-7 instead of 3.4e-3). Gradient checkpointing only
# recomputes the forward: tiny models need no memory back.
CPU_PRECISION = (
    "+actor_rollout_ref.actor.fsdp_config.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}",
    "actor_rollout_ref.model.enable_gradient_checkpointing=False",
    "actor_rollout_ref.rollout.dtype=float32",
)
CPU_REWARD_MODEL_DTYPE = "reward.reward_model.rollout.dtype=float32"  # a frozen dual's vLLM server


def cpu_overrides() -> list[str]:
    """What verl 0.9.1 needs to run on CPU (docs/verl-0.9.1.md section 9), whatever the run's sizes
    (the e2e tier's runs use it too)."""
    return [
        *CPU_PRECISION,
        "+ray_kwargs.ray_init.num_gpus=1",  # one fake Ray GPU per vLLM server
        "ray_kwargs.ray_init.num_cpus=16",
        "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
        "+actor_rollout_ref.rollout.enable_sleep_mode=False",
        "actor_rollout_ref.rollout.enforce_eager=True",
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "actor_rollout_ref.rollout.checkpoint_engine.update_weights_bucket_megabytes=64",
        "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
    ]


def environment(paths: RunPaths, tmpdir: Path, device: str = "cpu") -> dict[str, str]:
    """Environment of the driver and (through Ray) every worker. `tmpdir` must be a SHORT path:
    vLLM and Ray put AF_UNIX sockets there (107-character limit)."""
    env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
        "TMPDIR": str(tmpdir),
        "RAY_TMPDIR": str(tmpdir),
        "TORCHINDUCTOR_CACHE_DIR": str(tmpdir / "inductor"),
        "VERL_FILE_LOGGER_PATH": str(paths.metrics),
    }
    if device == "cpu":
        env.update(CPU_ENV)
    # Modules this process allowed (e.g. the translation demo's language detector, named in its rows)
    # must be allowed in the reward workers too: data alone never imports a module.
    allowed = sorted(allowed_task_modules())
    if allowed:
        env[TASK_MODULES_ENV] = ",".join(allowed)
    return env


def describe(method: str, grpo: GRPOSettings) -> dict[str, Any]:
    """The settings of one run as written to the output folder's config."""
    return {"method": method, "agent": METHOD_AGENTS[method], **asdict(grpo)}
