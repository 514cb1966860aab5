"""`dupo` reward manager: DuPO rewards with a separate, frozen dual model.

verl's reward loop hands the manager the address of its reward-model router
(`reward.reward_model.enable=True`); the dual questions go there as OpenAI chat completions. The
scoring, options (`+dupo.<key>=...`) and metrics are the same as the self-dual agent loop's. With
`+dupo.judge=anchored` it also combines the live verdict `dupo_agent` left in the sample's extra
fields with the frozen one (`dupo_verl.verl.anchor`).
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import aiohttp
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
from verl.experimental.reward_loop.reward_manager.registry import register

from dupo_verl.scoring import anchored_reward
from dupo_verl.verl.anchor import read_live_verdict, require_live_judge
from dupo_verl.verl.generate import RouterGenerate
from dupo_verl.verl.rows import agent_yaml_dupo, gold_label, resolve_options, row_task, score_row
from dupo_verl.verl.startup import check_files_once, require_room_for_duals

# No HTTP-level limit: the scorer bounds each dual call by `dupo.dual_timeout_s` (up to a day); a
# session limit under it would end calls early and log the wrong bound.
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=None)


@register("dupo")
class DuPORewardManager(RewardManagerBase):
    """Scores each response by how well the frozen dual model rebuilds the hidden parts."""

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any = None,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
    ) -> None:
        super().__init__(config, tokenizer, compute_score)
        if not reward_router_address:
            raise ValueError(
                "the 'dupo' reward manager needs a dual model: set reward.reward_model.enable=True, "
                "reward.reward_model.model_path=<dual model>, reward.reward_model.rollout.name=vllm and "
                "reward.custom_reward_function.path=pkg://reward_fns (verl only calls a reward manager "
                "next to a reward model when a custom reward function is set)"
            )
        self.reward_router_address = reward_router_address
        self.reward_model_tokenizer = reward_model_tokenizer
        # the options dupo_agent judges with (its YAML's `dupo:` mapping, then +dupo.<key>)
        self.options = resolve_options(agent_yaml_dupo(config), config)
        check_files_once(config.get("data"), self.options, None, all_rows=True)
        reward_model = config.reward.get("reward_model") or {}
        self.model_name = reward_model.get("model_path")
        require_room_for_duals(
            self.options, (reward_model.get("rollout") or {}).get("max_model_len"), "the reward model (max_model_len)"
        )
        if self.options.judge == "anchored":
            require_live_judge(config)
        # one HTTP session per event loop for every sample: identical questions in flight share one
        # call (shared_calls), which must not end when the sample that started it gives up
        self._sessions: dict[int, tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = {}
        if self.options.dual_mode == "likelihood" and reward_model_tokenizer is None:
            raise ValueError(
                "dupo.dual_mode=likelihood with the 'dupo' reward manager needs the dual model's tokenizer "
                "(verl passes it when reward.reward_model.enable=True and reward.reward_model.model_path is set)"
            )

    async def run_single(self, data: DataProto) -> dict:
        data_item = data[-1:][0]  # multi-output trajectories are scored on their last sequence
        non_tensor = data_item.non_tensor_batch
        if "extra_info" not in non_tensor:
            raise ValueError(
                "the 'dupo' reward manager got a batch without dataset columns (extra_info): verl V1 "
                "passes only prompts/responses to a colocated reward model; set "
                "reward.reward_model.enable_resource_pool=True (or trainer.use_v1=false)"
            )
        task, duals = row_task(non_tensor["extra_info"], non_tensor.get("data_source"))
        # dupo_agent leaves a live verdict only when it judges anchored (its options travel with it)
        live = read_live_verdict(non_tensor)
        if self.options.judge == "anchored" and live is None:
            raise ValueError(
                "dupo.judge=anchored: this rollout carries no live verdict; the agent loop must be dupo_agent "
                "(data.agent_name / actor_rollout_ref.rollout.agent.default_agent_loop=dupo_agent)"
            )

        response_ids = data_item.batch["responses"]
        valid_length = int(data_item.batch["attention_mask"][-response_ids.shape[-1] :].sum())
        response = await self.loop.run_in_executor(
            None, lambda: self.tokenizer.decode(response_ids[:valid_length], skip_special_tokens=True)
        )

        # anchored: the frozen judge asks with the live judge's options (its YAML ones included)
        options = live[1] if live is not None else self.options
        generate = RouterGenerate(
            self.reward_router_address, self._session(), model=self.model_name, tokenizer=self.reward_model_tokenizer
        )
        result = await score_row(
            task,
            duals,
            response,
            generate,
            options,
            session_id=f"dupo-{uuid4().hex}",
            ground_truth=gold_label(non_tensor.get("reward_model")),
        )
        if live is not None:
            result = anchored_reward(live[0], result, options)
        return {
            "reward_score": float(result.reward),
            "reward_extra_info": {k: float(v) for k, v in result.metrics.items()},
        }

    def _session(self) -> aiohttp.ClientSession:
        """This event loop's HTTP session (kept open for the manager's life: verl has no close hook)."""
        loop = asyncio.get_running_loop()
        owner, session = self._sessions.get(id(loop), (None, None))
        if session is None or session.closed or owner is not loop:  # (a dead loop's id reused)
            session = aiohttp.ClientSession(timeout=HTTP_TIMEOUT)
            self._sessions[id(loop)] = (loop, session)
        return session
