#!/usr/bin/env bash
# GRPO with DuPO rewards on math, self-dual: the policy answers its own dual questions
# ("given that the answer is <its answer>, what was the hidden number?"), no gold labels used.
#
# Data first (paths below are what these commands write):
#   dupo-verl prepare math --input problems.jsonl --output "$DATA_DIR/math_train.parquet"
#       # optional, the paper's unknown-component selection: dupo-verl filter ... (see its --help)
#   dupo-verl prepare math --input ../shared/data/math/aime2024.jsonl --answer-key answer \
#       --keep-unmaskable --agent-name single_turn_agent --output "$DATA_DIR/aime2024_val.parquet"
# Validation rows name single_turn_agent, so they are scored against their gold answers by
# reward_fns.compute_score (the accuracy you compare with the paper), not by DuPO.
#
# Usage: bash examples/grpo_math_self_dual.sh [more Hydra overrides ...]
# Hyperparameters marked [paper] are from the DuPO paper's appendix (arXiv 2508.14460);
# [ours] are our choices where the paper is silent or a verl setting is needed.
set -euo pipefail

# ---------------------------------------------------------------- change these
MODEL=${MODEL:-deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B}   # [paper] one of the models it trains
DATA_DIR=${DATA_DIR:-$HOME/data/dupo}
TRAIN_FILE=${TRAIN_FILE:-$DATA_DIR/math_train.parquet}
VAL_FILE=${VAL_FILE:-$DATA_DIR/aime2024_val.parquet}
N_GPUS_PER_NODE=${N_GPUS_PER_NODE:-8}
NNODES=${NNODES:-1}
ROLLOUT_TP=${ROLLOUT_TP:-1}          # vLLM tensor parallel size per rollout replica
VAL_N=${VAL_N:-4}                    # samples per validation problem ([paper] evaluates Avg@32)
PROJECT=${PROJECT:-dupo}
EXPERIMENT=${EXPERIMENT:-grpo_math_self_dual}
PYTHON=${PYTHON:-python3}
# ----------------------------------------------------------------------------

for f in "$TRAIN_FILE" "$VAL_FILE"; do
    [[ -f "$f" ]] || { echo "missing $f: run the dupo-verl prepare commands at the top of $0" >&2; exit 1; }
done
AGENT_LOOP_CONFIG=$(dupo-verl agent-loop-config)

ARGS=(
    # ---- data
    data.train_files="$TRAIN_FILE"
    data.val_files="$VAL_FILE"
    data.train_batch_size=512                           # [paper] 512 prompts per step
    data.max_prompt_length=2048                         # [paper]
    data.max_response_length=30000                      # [paper] math
    data.filter_overlong_prompts=True                   # [ours]
    data.truncation=error                               # [ours]
    # ---- GRPO
    algorithm.adv_estimator=grpo                        # [paper]
    algorithm.use_kl_in_reward=False                    # [ours]
    actor_rollout_ref.rollout.n=16                      # [paper] 16 rollouts per prompt
    actor_rollout_ref.rollout.temperature=1.0           # [paper]
    actor_rollout_ref.actor.ppo_mini_batch_size=32      # [paper] mini-batch 32 prompts
    actor_rollout_ref.actor.optim.lr=1e-6               # [paper]
    actor_rollout_ref.actor.grad_clip=1.0               # [paper]
    actor_rollout_ref.actor.use_kl_loss=True            # [ours] the paper does not give KL settings
    actor_rollout_ref.actor.kl_loss_coef=0.001          # [ours]
    actor_rollout_ref.actor.kl_loss_type=low_var_kl     # [ours]
    actor_rollout_ref.actor.entropy_coeff=0             # [ours]
    trainer.total_training_steps=300                    # [ours] read off the paper's training curve
    # ---- DuPO, self-dual [ours: the paper does not say how many dual questions/samples per rollout]
    actor_rollout_ref.rollout.agent.agent_loop_config_path="$AGENT_LOOP_CONFIG"
    actor_rollout_ref.rollout.agent.default_agent_loop=dupo_agent
    +dupo.dual_questions_per_rollout=2
    +dupo.dual_samples=2
    +dupo.dual_temperature=0.6
    +dupo.dual_max_tokens=4096                          # reasoning models think before answering
    trainer.v1.trainer_mode=dupo_sync                   # verl's sync trainer + dupo/* metrics each step
    # ---- validation on gold labels [paper: Avg@N at temperature 0.8]
    reward.custom_reward_function.path=pkg://reward_fns
    reward.custom_reward_function.name=compute_score
    actor_rollout_ref.rollout.val_kwargs.do_sample=True
    actor_rollout_ref.rollout.val_kwargs.temperature=0.8
    actor_rollout_ref.rollout.val_kwargs.n="$VAL_N"
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
    # ---- trainer
    trainer.n_gpus_per_node="$N_GPUS_PER_NODE"
    trainer.nnodes="$NNODES"
    trainer.project_name="$PROJECT"
    trainer.experiment_name="$EXPERIMENT"
    trainer.logger='["console","wandb"]'
    trainer.save_freq=50
    trainer.test_freq=25
)
exec "$PYTHON" -m verl.trainer.main_ppo "${ARGS[@]}" "$@"
