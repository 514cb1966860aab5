#!/usr/bin/env bash
# GRPO with DuPO rewards on math where a separate, frozen dual model answers the dual questions
# (the `dupo` reward manager). The policy rolls out with verl's plain single_turn_agent; verl's
# reward loop sends every response to the manager, which asks the dual model through verl's
# reward-model router (OpenAI /v1/chat/completions). The dual model is never weight-synced.
#
# Our recommended judge for long runs (the frozen ensemble): by default the dual model is a
# frozen copy of the starting policy (DUAL_MODEL=$MODEL; any chat model vLLM serves works), it is
# asked two dual questions per rollout and a rollout is paid only when it rebuilds both
# (`+dupo.dual_aggregate=min`). A frozen judge cannot decay with the policy; asking it twice keeps
# it from paying the slips it shares with the policy. On the two-sum demo (3 seeds, 72 GRPO steps)
# its reward agreed with the gold label on 98.7 % of rollouts (precision 0.980-0.995, recall 0.966-0.984
# per 8-step window, mean of the seeds) and held-out accuracy gained +17.1 points, 88 % of the gold-label oracle's gain
# (README, "Does it work?"). Two-sum only: on math, watch dupo/reward and dupo_gold_acc.
#
# Data first: rows must name single_turn_agent (else dupo_agent scores them itself):
#   dupo-verl prepare math --input problems.jsonl --agent-name single_turn_agent \
#       --output "$DATA_DIR/math_train_frozen.parquet"
#   dupo-verl prepare math --input ../shared/data/math/aime2024.jsonl --answer-key answer \
#       --keep-unmaskable --agent-name single_turn_agent --output "$DATA_DIR/aime2024_val.parquet"
# Validation rows go through the same manager: their gold accuracy is logged as
# val-aux/<data_source>/dupo_gold_acc/mean@N.
#
# Usage: bash examples/grpo_math_frozen_dual.sh [more Hydra overrides ...]
# [paper] = DuPO paper appendix (arXiv 2508.14460); [ours] = our choice. The frozen dual itself
# is ours: the paper's text implies the policy answers its own duals.
set -euo pipefail

# ---------------------------------------------------------------- change these
MODEL=${MODEL:-deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B}
DUAL_MODEL=${DUAL_MODEL:-$MODEL}         # [ours] a frozen copy of the starting policy (or any chat model vLLM serves)
DATA_DIR=${DATA_DIR:-$HOME/data/dupo}
TRAIN_FILE=${TRAIN_FILE:-$DATA_DIR/math_train_frozen.parquet}
VAL_FILE=${VAL_FILE:-$DATA_DIR/aime2024_val.parquet}
N_GPUS_PER_NODE=${N_GPUS_PER_NODE:-8}    # GPUs per node for the policy (actor + rollout)
NNODES=${NNODES:-1}
DUAL_GPUS=${DUAL_GPUS:-2}                # extra GPUs that serve the dual model
DUAL_TP=${DUAL_TP:-1}
ROLLOUT_TP=${ROLLOUT_TP:-1}
PROJECT=${PROJECT:-dupo}
EXPERIMENT=${EXPERIMENT:-grpo_math_frozen_dual}
PYTHON=${PYTHON:-python3}
# ----------------------------------------------------------------------------

for f in "$TRAIN_FILE" "$VAL_FILE"; do
    [[ -f "$f" ]] || { echo "missing $f: run the dupo-verl prepare commands at the top of $0" >&2; exit 1; }
done

ARGS=(
    data.train_files="$TRAIN_FILE"
    data.val_files="$VAL_FILE"
    data.train_batch_size=512                           # [paper]
    data.max_prompt_length=2048                         # [paper]
    data.max_response_length=30000                      # [paper] math
    data.filter_overlong_prompts=True                   # [ours]
    algorithm.adv_estimator=grpo                        # [paper]
    algorithm.use_kl_in_reward=False                    # [ours]
    actor_rollout_ref.rollout.n=16                      # [paper]
    actor_rollout_ref.rollout.temperature=1.0           # [paper]
    actor_rollout_ref.actor.ppo_mini_batch_size=32      # [paper]
    actor_rollout_ref.actor.optim.lr=1e-6               # [paper]
    actor_rollout_ref.actor.grad_clip=1.0               # [paper]
    actor_rollout_ref.actor.use_kl_loss=True            # [ours]
    actor_rollout_ref.actor.kl_loss_coef=0.001          # [ours]
    actor_rollout_ref.actor.entropy_coeff=0             # [ours]
    trainer.total_training_steps=300                    # [ours]
    # ---- the frozen dual model and the `dupo` reward manager
    actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent
    reward.reward_manager.name=dupo                     # registered by the dupo-verl plugin
    reward.reward_model.enable=True
    reward.reward_model.model_path="$DUAL_MODEL"
    reward.reward_model.rollout.name=vllm
    reward.reward_model.rollout.tensor_model_parallel_size="$DUAL_TP"
    reward.reward_model.rollout.gpu_memory_utilization=0.85
    # Keep the dual's servers awake. With this flag on (verl's default), verl 0.9.1's
    # RewardModelManager puts them to sleep after start-up, and only
    # RewardLoopManager.compute_rm_score wakes them; the streaming agent-loop -> reward-loop path
    # used here never calls it, so every dual request waits forever (the run hangs, on any device).
    reward.reward_model.rollout.free_cache_engine=False
    reward.reward_model.enable_resource_pool=True       # its own GPUs; V1 passes dataset columns only then
    reward.reward_model.n_gpus_per_node="$DUAL_GPUS"
    reward.reward_model.nnodes=1
    # verl calls a reward manager next to a reward model only when a custom reward function is
    # set (else it asks the model for a discriminative /classify score). The manager does not call
    # it: DuPO scoring (and the gold-label part of +dupo.hybrid_weight) comes from the task.
    reward.custom_reward_function.path=pkg://reward_fns
    reward.custom_reward_function.name=compute_score
    +dupo.dual_questions_per_rollout=2                  # [ours]
    +dupo.dual_aggregate=min                            # [ours] paid only when both are rebuilt
    +dupo.dual_samples=4                                # [ours]
    +dupo.dual_temperature=0.6                          # [ours]
    +dupo.dual_max_tokens=1024                          # [ours] an instruct dual answers briefly
    trainer.v1.trainer_mode=dupo_sync                   # dupo/* metrics at every step
    actor_rollout_ref.rollout.val_kwargs.do_sample=True
    actor_rollout_ref.rollout.val_kwargs.temperature=0.8 # [paper] evaluation temperature
    # ---- model, memory, throughput [ours]
    actor_rollout_ref.model.path="$MODEL"
    actor_rollout_ref.model.use_remove_padding=True
    actor_rollout_ref.model.enable_gradient_checkpointing=True
    actor_rollout_ref.actor.use_dynamic_bsz=True
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=32768
    actor_rollout_ref.rollout.name=vllm
    actor_rollout_ref.rollout.tensor_model_parallel_size="$ROLLOUT_TP"
    actor_rollout_ref.rollout.gpu_memory_utilization=0.6
    actor_rollout_ref.rollout.calculate_log_probs=True
    trainer.n_gpus_per_node="$N_GPUS_PER_NODE"
    trainer.nnodes="$NNODES"
    trainer.project_name="$PROJECT"
    trainer.experiment_name="$EXPERIMENT"
    trainer.logger='["console","wandb"]'
    trainer.save_freq=50
    trainer.test_freq=25
)
exec "$PYTHON" -m verl.trainer.main_ppo "${ARGS[@]}" "$@"
