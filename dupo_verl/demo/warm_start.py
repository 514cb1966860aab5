"""Brief supervised warm start of the tiny LM on both roles, stopped early (a plain torch loop).

DuPO needs a policy that already answers sometimes (so GRPO groups contain right and wrong
answers) and a dual that can judge (so the reward carries signal). Both come from supervised
training on gold examples in two phases: first dual examples only, until the dual reaches
`dual_target` on a dev set (a dual stronger than the primal: the paper's capability asymmetry is
the usual reason DuPO fails), then a mix of both roles (`dual_fraction` dual) until the primal
reaches `primal_target`, where training stops so the primal is still far from perfect. Training a
single role alone once the other is trained makes the model forget the other, so the second phase
always mixes. With `dual_min`, stopping also needs the dual at that dev accuracy: once the primal is
at its target, batches are dual-only until the dual is back at `dual_min` (a judge reliably stronger
than the policy; the two-sum demo's DuPO gain tracked the warm start's dual accuracy). Only the reply
tokens (and the end-of-turn token) carry loss.

The primal can jump 20-40 dev points within 50 steps once it starts to answer, so a stop checked only
every `eval_every` steps overshoots its target (0.35 -> 0.58 was measured) and leaves DuPO little to
gain. Once the primal trains (mixed phase), `primal_eval_every` checks the primal's dev accuracy every
few steps (the dual too whenever the primal is at its target, so the stop always sees both fresh):
greedy decoding of the dev set costs about two training steps.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dupo_verl.demo.evaluate import accuracy, load_model, prompt_ids
from dupo_verl.demo.examples import DUAL, PRIMAL, Example
from dupo_verl.tasks import DualTask


@dataclass(frozen=True)
class WarmStartConfig:
    """Budget and stopping rule of the warm start."""

    max_steps: int = 4000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 50
    # The defaults are the strong-dual warm start of docs/results (dual >= 95 % first, kept >= 90 %): with
    # it DuPO's judge is stronger than the policy on every seed, and `dupo_ensemble` gained most.
    dual_fraction: float = 0.7  # share of dual examples in the mixed phase
    primal_target: float | None = 0.45  # stop once the primal reaches this dev accuracy (None: max_steps)
    dual_target: float | None = 0.95  # train the dual alone first, up to this dev accuracy (None: no such phase)
    dual_min: float | None = 0.9  # also require this dev dual accuracy to stop; dual-only batches top it up
    eval_every: int = 50
    primal_eval_every: int | None = 5  # in the mixed phase, check the primal this often (None: every eval_every)
    dev_size: int = 200
    max_new_tokens: int = 8
    seed: int = 0
    # What the demo added to the training examples (`dual_extra`), e.g. "copy_through=0.2". warm_start
    # does not read it: it is part of the settings so that a warm start is reused only with the same data.
    recipe: str = ""

    def validate(self) -> None:
        if self.max_steps < 1 or self.batch_size < 1 or self.eval_every < 1:
            raise ValueError("max_steps, batch_size and eval_every must be >= 1")
        if self.primal_eval_every is not None and self.primal_eval_every < 1:
            raise ValueError(f"primal_eval_every must be >= 1 or None, got {self.primal_eval_every}")
        if not 0.0 <= self.dual_fraction <= 1.0:
            raise ValueError(f"dual_fraction must be in [0, 1], got {self.dual_fraction}")
        for name in ("primal_target", "dual_target", "dual_min"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1] or None, got {value}")
        if not (math.isfinite(self.lr) and self.lr > 0):  # NaN passes `lr <= 0`
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")


@dataclass
class WarmStartResult:
    """Where the model was saved, how far it trained and the dev curve."""

    model_dir: Path
    steps: int
    wall_s: float
    dev_primal: float
    dev_dual: float
    stopped_because: str
    log: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["model_dir"] = str(self.model_dir)
        return out


def encode(tokenizer: Any, example: Example) -> tuple[list[int], list[int]]:
    """(prompt ids, reply ids ending with the end-of-turn token)."""
    prompt = prompt_ids(tokenizer, example.messages)
    reply = tokenizer(example.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt, [int(i) for i in reply]


def collate(encoded: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-padded batch whose labels are -100 everywhere except on the reply tokens."""
    import torch

    width = max(len(p) + len(r) for p, r in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, (p, r) in enumerate(encoded):
        seq = p + r
        ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, len(p) : len(seq)] = torch.tensor(r)
        mask[i, : len(seq)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def warm_start(
    model_dir: str | Path,
    out_dir: str | Path,
    task: DualTask,
    primal: Sequence[Example],
    dual: Sequence[Example],
    config: WarmStartConfig = WarmStartConfig(),
    progress: Callable[[dict[str, Any]], None] | None = None,
    dual_extra: Sequence[Example] = (),
    primal_extra: Sequence[Example] = (),
) -> WarmStartResult:
    """Train `model_dir` on `primal` and `dual` examples, save to `out_dir`, return the record.

    A dev set of `config.dev_size` examples per role is held back from the given examples.
    `dual_extra` / `primal_extra` are trained on in their role but never in the dev set (the
    stopping rule measures each direction on its real task only).
    """
    import torch

    config.validate()
    if not primal or not dual:
        raise ValueError("the warm start needs both primal and dual examples")
    rng = random.Random(f"warm_start:{config.seed}")
    torch.manual_seed(config.seed)
    primal_pool, primal_dev = _split(primal, config.dev_size, rng)
    dual_pool, dual_dev = _split(dual, config.dev_size, rng)
    model, tokenizer = load_model(str(model_dir))
    model.train()
    encoded = {PRIMAL: [encode(tokenizer, e) for e in (*primal_pool, *primal_extra)],
               DUAL: [encode(tokenizer, e) for e in (*dual_pool, *dual_extra)]}
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, config.warmup_steps))
    )

    def dev_accuracy(examples: Sequence[Example]) -> float:
        return accuracy(model, tokenizer, task, examples, config.max_new_tokens, keep_samples=0).value

    start = time.monotonic()
    log: list[dict[str, Any]] = []
    dev_p, dev_d = dev_accuracy(primal_dev), dev_accuracy(dual_dev)
    dual_done = _reached(dev_d, config.dual_target)
    phase = "both" if dual_done or config.dual_target is None else "dual"
    primal_done = phase == "both" and _reached(dev_p, config.primal_target)
    dual_ok = config.dual_min is None or dev_d >= config.dual_min
    step, loss_sum, loss_n = 0, 0.0, 0
    stopped = "max_steps"
    while step < config.max_steps:
        if primal_done and dual_ok:
            stopped = "primal_target"
            break
        if phase == "dual" and dual_done:
            phase = "both"
        share = dual_share(phase, primal_done, dual_ok, config.dual_fraction)
        kinds = [DUAL if rng.random() < share else PRIMAL for _ in range(config.batch_size)]
        batch = collate([rng.choice(encoded[k]) for k in kinds], tokenizer.pad_token_id)
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        if math.isfinite(loss.item()):
            loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
        full = step % config.eval_every == 0 or step == config.max_steps
        if full or primal_check_due(step, phase, config):
            dev_p = dev_accuracy(primal_dev)
            primal_done = phase == "both" and _reached(dev_p, config.primal_target)
            if full or primal_done:  # a stop must see the dual of the same step
                dev_d = dev_accuracy(dual_dev)
                dual_ok = config.dual_min is None or dev_d >= config.dual_min
                dual_done = dual_done or _reached(dev_d, config.dual_target)
            record = {
                "step": step,
                "loss": loss_sum / max(1, loss_n),
                "dev_primal": dev_p,
                "dev_dual": dev_d if full or primal_done else None,  # None: a primal-only check
                "phase": phase,
                "wall_s": round(time.monotonic() - start, 2),
            }
            log.append(record)
            if progress and record["dev_dual"] is not None:
                progress(record)
            loss_sum, loss_n = 0.0, 0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    result = WarmStartResult(out, step, time.monotonic() - start, dev_p, dev_d, stopped, log)
    (out / "warm_start.json").write_text(json.dumps({**result.to_dict(), "config": asdict(config)}, indent=2))
    return result


def primal_check_due(step: int, phase: str, config: WarmStartConfig) -> bool:
    """A primal-only dev check between the full ones: in the mixed phase, every `primal_eval_every` steps."""
    return (phase == "both" and config.primal_target is not None and config.primal_eval_every is not None
            and step % config.primal_eval_every == 0)


# Settings that older `warm_start.json` files lack, with the value that reproduces how those were made.
LEGACY_SETTINGS: dict[str, Any] = {"dual_min": None, "primal_eval_every": None, "recipe": ""}


def saved_settings(saved: dict[str, Any]) -> dict[str, Any]:
    """The settings a saved warm start was made with, completed for files written before a setting existed."""
    return {**LEGACY_SETTINGS, **saved}


def dual_share(phase: str, primal_done: bool, dual_ok: bool, dual_fraction: float) -> float:
    """Share of dual examples in the next batch: all of it while the dual trains first or is topped
    up (primal at its target, dual below `dual_min`), else the mixed phase's `dual_fraction`."""
    return 1.0 if phase == "dual" or (primal_done and not dual_ok) else dual_fraction


def _reached(value: float, target: float | None) -> bool:
    return target is not None and value >= target


def _split(examples: Sequence[Example], dev_size: int, rng: random.Random) -> tuple[list[Example], list[Example]]:
    items = list(examples)
    rng.shuffle(items)
    dev_size = min(dev_size, len(items) // 5)
    return items[dev_size:], items[:dev_size]
