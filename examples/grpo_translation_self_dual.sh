#!/usr/bin/env bash
# GRPO with DuPO rewards on translation: the policy back-translates its own translation and the
# reward is the similarity (chrF by default, set at prepare time) between the back-translation and
# the source sentence. Monolingual source text is all training needs.
#
# Data first (paths below are what these commands write):
#   dupo-verl prepare translation --input eng_Latn.txt --src-lang eng_Latn --tgt-lang deu_Latn \
#       --output "$DATA_DIR/en_de_train.parquet"
#   dupo-verl prepare translation --input ../shared/data/translation/flores_devtest/eng_Latn.txt \
#       --reference ../shared/data/translation/flores_devtest/deu_Latn.txt --src-lang eng_Latn \
#       --tgt-lang deu_Latn --agent-name single_turn_agent --output "$DATA_DIR/en_de_val.parquet"
# Validation rows name single_turn_agent: they are scored against the FLORES reference
# (reward_fns.compute_score: chrF as the score, BLEU alongside), not by DuPO.
#
# Usage: bash examples/grpo_translation_self_dual.sh [more Hydra overrides ...]
# [paper] = DuPO paper appendix (arXiv 2508.14460); [ours] = our choice where it is silent.
set -euo pipefail

# ---------------------------------------------------------------- change these
MODEL=${MODEL:-Qwen/Qwen2.5-7B-Instruct}   # [ours] the paper trains Seed-X-7B-Instruct
DATA_DIR=${DATA_DIR:-$HOME/data/dupo}
TRAIN_FILE=${TRAIN_FILE:-$DATA_DIR/en_de_train.parquet}
VAL_FILE=${VAL_FILE:-$DATA_DIR/en_de_val.parquet}
N_GPUS_PER_NODE=${N_GPUS_PER_NODE:-8}
NNODES=${NNODES:-1}
ROLLOUT_TP=${ROLLOUT_TP:-1}
PROJECT=${PROJECT:-dupo}
EXPERIMENT=${EXPERIMENT:-grpo_translation_self_dual}
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
    data.max_response_length=4096                       # [paper] translation
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
    # ---- DuPO: one back-translation per rollout, greedy [ours]
    actor_rollout_ref.rollout.agent.agent_loop_config_path="$AGENT_LOOP_CONFIG"
    actor_rollout_ref.rollout.agent.default_agent_loop=dupo_agent
    +dupo.dual_questions_per_rollout=1
    +dupo.dual_samples=1
    +dupo.dual_temperature=0.0
    +dupo.dual_max_tokens=1024
    trainer.v1.trainer_mode=dupo_sync
    # ---- validation against references
    reward.custom_reward_function.path=pkg://reward_fns
    reward.custom_reward_function.name=compute_score
    actor_rollout_ref.rollout.val_kwargs.do_sample=False
    # ---- model, memory, throughput [ours]
    actor_rollout_ref.model.path="$MODEL"
    actor_rollout_ref.model.use_remove_padding=True
    actor_rollout_ref.model.enable_gradient_checkpointing=True
    actor_rollout_ref.actor.use_dynamic_bsz=True
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=16384
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
