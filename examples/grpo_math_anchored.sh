#!/usr/bin/env bash
# GRPO with DuPO rewards on math judged by the anchored judge (`+dupo.judge=anchored`): the live
# self-dual (the policy answers its own dual questions in `dupo_agent`) AND a frozen copy of the
# starting policy (served by verl's reward-model servers, asked by the `dupo` reward manager).
# A sample's reward needs both judges to accept (`dual_aggregate=min`): a live judge that drifts
# with the policy cannot raise a reward the frozen one rejects. How often the two disagree is
# logged at every step as dupo/judge_disagreement/mean, the label-free early warning of decay.
#
# Data first (rows and validation rows name dupo_agent, prepare's default: the reward manager
# combines the live verdict that dupo_agent leaves on each sample with the frozen one):
#   dupo-verl prepare math --input problems.jsonl --output "$DATA_DIR/math_train.parquet"
#   dupo-verl prepare math --input ../shared/data/math/aime2024.jsonl --answer-key answer \
#       --keep-unmaskable --output "$DATA_DIR/aime2024_val_dupo.parquet"
# Validation rows are scored by the same judges; their gold accuracy is logged as
# val-aux/<data_source>/dupo_gold_acc/mean@N.
# Cheaper still: append +dupo.dual_mode=likelihood (both judges score the hidden value's
# log-probability in one prefill instead of sampling dual answers).
#
# Usage: bash examples/grpo_math_anchored.sh [more Hydra overrides ...]
# [paper] = DuPO paper appendix (arXiv 2508.14460); [ours] = our choice. The anchored judge is ours.
set -euo pipefail

# ---------------------------------------------------------------- change these
MODEL=${MODEL:-deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B}
DUAL_MODEL=${DUAL_MODEL:-$MODEL}          # the frozen judge: the starting policy, never weight-synced
DATA_DIR=${DATA_DIR:-$HOME/data/dupo}
TRAIN_FILE=${TRAIN_FILE:-$DATA_DIR/math_train.parquet}
VAL_FILE=${VAL_FILE:-$DATA_DIR/aime2024_val_dupo.parquet}
N_GPUS_PER_NODE=${N_GPUS_PER_NODE:-8}    # GPUs per node for the policy (actor + rollout)
NNODES=${NNODES:-1}
DUAL_GPUS=${DUAL_GPUS:-2}                # extra GPUs that serve the frozen judge
DUAL_TP=${DUAL_TP:-1}
ROLLOUT_TP=${ROLLOUT_TP:-1}
PROJECT=${PROJECT:-dupo}
EXPERIMENT=${EXPERIMENT:-grpo_math_anchored}
PYTHON=${PYTHON:-python3}
# ----------------------------------------------------------------------------

for f in "$TRAIN_FILE" "$VAL_FILE"; do
    [[ -f "$f" ]] || { echo "missing $f: run the dupo-verl prepare commands at the top of $0" >&2; exit 1; }
done
AGENT_LOOP_CONFIG=$(dupo-verl agent-loop-config)

ARGS=(
    data.train_files="$TRAIN_FILE"
    data.val_files="$VAL_FILE"
    data.train_batch_size=512                           # [paper]
    data.max_prompt_length=2048                         # [paper]
    data.max_response_length=30000                      # [paper] math
    data.filter_overlong_prompts=True                   # [ours]
    data.truncation=error                               # [ours]
    algorithm.adv_estimator=grpo                        # [paper]
    algorithm.use_kl_in_reward=False                    # [ours]
    actor_rollout_ref.rollout.n=16                      # [paper]
    actor_rollout_ref.rollout.temperature=1.0           # [paper]
    actor_rollout_ref.actor.ppo_mini_batch_size=32      # [paper]
    actor_rollout_ref.actor.optim.lr=1e-6               # [paper]
    actor_rollout_ref.actor.grad_clip=1.0               # [paper]
    actor_rollout_ref.actor.use_kl_loss=True            # [ours]
    actor_rollout_ref.actor.kl_loss_coef=0.001          # [ours]
    actor_rollout_ref.actor.kl_loss_type=low_var_kl     # [ours]
    actor_rollout_ref.actor.entropy_coeff=0             # [ours]
    trainer.total_training_steps=300                    # [ours]
    # ---- the live judge: dupo_agent asks the policy's own rollout servers
    actor_rollout_ref.rollout.agent.agent_loop_config_path="$AGENT_LOOP_CONFIG"
    actor_rollout_ref.rollout.agent.default_agent_loop=dupo_agent
    +dupo.judge=anchored                                # live AND frozen judge
    +dupo.dual_aggregate=min                            # [ours] both judges must accept
    +dupo.dual_questions_per_rollout=2                  # [ours]
    +dupo.dual_samples=2                                # [ours] per judge
    +dupo.dual_temperature=0.6                          # [ours]
    +dupo.dual_max_tokens=4096                          # reasoning models think before answering
    # ---- the frozen judge: the `dupo` reward manager asks the reward-model servers
    reward.reward_manager.name=dupo                     # registered by the dupo-verl plugin
    reward.reward_model.enable=True
    reward.reward_model.model_path="$DUAL_MODEL"
    reward.reward_model.rollout.name=vllm
    reward.reward_model.rollout.tensor_model_parallel_size="$DUAL_TP"
    reward.reward_model.rollout.gpu_memory_utilization=0.85
    # Keep the judge's servers awake: verl 0.9.1 puts them to sleep after start-up and the streaming
    # agent-loop -> reward-loop path never wakes them (see grpo_math_frozen_dual.sh).
    reward.reward_model.rollout.free_cache_engine=False
    reward.reward_model.enable_resource_pool=True       # its own GPUs; V1 passes dataset columns only then
    reward.reward_model.n_gpus_per_node="$DUAL_GPUS"
    reward.reward_model.nnodes=1
    # verl calls a reward manager next to a reward model only when a custom reward function is set;
    # the manager does not call it (DuPO scoring comes from the task).
    reward.custom_reward_function.path=pkg://reward_fns
    reward.custom_reward_function.name=compute_score
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
