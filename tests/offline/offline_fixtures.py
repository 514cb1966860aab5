"""A tiny arithmetic dual task and a scripted model, so filter and rerank rules can be hand-checked.

`ArithTask`: the problem "What is A + B?"; each dual hides A or B and gives the candidate's answer.
`ScriptedBackend` plays the model: primal replies come from a per-problem script, dual replies
come from solving the dual arithmetically (hidden = answer - known), unless a test scripts them.
Every request is recorded, so tests can count generations exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dupo_verl.generation import GenerationRequest, SyncBackend
from dupo_verl.scoring import Completion
from dupo_verl.tasks import Decomposition, DualQuestion, DualTask, register_task

_ANSWER = re.compile(r"ANSWER:\s*(-?\d+)")
_INT = re.compile(r"-?\d+")
_DUAL = re.compile(
    r"^What is (?P<left>\S+) \+ (?P<right>\S+)\?\nThe answer is (?P<answer>.+)\. What is (?P<var>\w+)\?$"
)


@register_task("offline_test_arith")
class ArithTask(DualTask):
    ability = "math"

    def decompose(self, example: Mapping[str, Any], seed: int = 0) -> Decomposition:
        a, b = int(example["a"]), int(example["b"])
        return Decomposition(
            duals=[
                DualQuestion(masked_text=f"What is Va + {b}?", variable="Va", value=str(a)),
                DualQuestion(masked_text=f"What is {a} + Vb?", variable="Vb", value=str(b)),
            ]
        )

    def primal_messages(self, example: Mapping[str, Any]) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"What is {example['a']} + {example['b']}?"}]

    def extract_primal_answer(self, response: str) -> str | None:
        match = _ANSWER.search(response)
        return match.group(1) if match else None

    def answers_equal(self, left: str, right: str) -> bool:
        return int(left) == int(right)  # "05" and "5" are one answer

    def dual_messages(self, dual: DualQuestion, primal_answer: str) -> list[dict[str, str]]:
        return [
            {
                "role": "user",
                "content": f"{dual.masked_text}\nThe answer is {primal_answer}. What is {dual.variable}?",
            }
        ]

    def score_reconstruction(self, dual: DualQuestion, dual_response: str) -> float:
        numbers = _INT.findall(dual_response)
        return 1.0 if numbers and int(numbers[-1]) == int(dual.value) else 0.0

    def leaks(self, dual: DualQuestion, primal_answer: str) -> bool:
        return int(primal_answer) == int(dual.value)

    def gold_score(self, response: str, ground_truth: str) -> float | None:
        answer = self.extract_primal_answer(response)
        return 1.0 if answer is not None and int(answer) == int(ground_truth) else 0.0


def solve_dual(prompt: str) -> str:
    """What a perfect dual solver says: the hidden addend is the answer minus the known one."""
    match = _DUAL.match(prompt)
    assert match, prompt
    left, right, answer = match["left"], match["right"], int(match["answer"])
    known = int(right) if left.startswith("V") else int(left)
    return f"{match['var']} = {answer - known}"


class ScriptedBackend(SyncBackend):
    """Primal replies from `primal[problem_text]`; dual replies from `dual(prompt, sample)` or the solver.

    `fail(prompt)` returning True makes that request fail (every attempt).
    """

    name = "scripted"

    def __init__(
        self,
        primal: Mapping[str, Sequence[str]],
        dual: Callable[[str, int], str | None] | None = None,
        fail: Callable[[str], bool] | None = None,
    ) -> None:
        self.primal = primal
        self.dual = dual
        self.fail = fail
        self.requests: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        out: list[Any] = []
        for request in requests:
            self.requests.append(request)
            prompt = request.messages[-1]["content"]
            if self.fail is not None and self.fail(prompt):
                out.append(RuntimeError(f"scripted failure for {prompt!r}"))
            elif prompt in self.primal:
                out.append([Completion(text, 3) for text in list(self.primal[prompt])[: request.n]])
            else:
                texts = []
                for k in range(request.n):
                    scripted = self.dual(prompt, k) if self.dual is not None else None
                    texts.append(scripted if scripted is not None else solve_dual(prompt))
                out.append([Completion(t, 2) for t in texts])
        return out

    def dual_requests(self) -> list[GenerationRequest]:
        return [r for r in self.requests if r.messages[-1]["content"] not in self.primal]


def arith_row(a: int, b: int, ident: str, gold: bool = True) -> dict[str, Any]:
    """A prepared (verl-format) row of the arithmetic task."""
    task = ArithTask()
    example = {"a": a, "b": b}
    return {
        "data_source": "offline_test",
        "prompt": task.primal_messages(example),
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": str(a + b) if gold else ""},
        "extra_info": {
            "index": 0,
            "id": ident,
            "dupo": {
                "task": "offline_test_arith",
                "duals": [d.to_dict() for d in task.decompose(example).duals],
            },
        },
    }


def install_backend(monkeypatch: Any, pools: dict[str, list[str]], fail: Any = None) -> list[ScriptedBackend]:
    """Make the CLI build a `ScriptedBackend` over `pools`; the list collects every one it built."""
    import dupo_verl.generation.options as backend_options

    made: list[ScriptedBackend] = []

    def build(args: Any) -> ScriptedBackend:
        made.append(ScriptedBackend(pools, fail=fail))
        return made[-1]

    monkeypatch.setattr(backend_options, "build_backend", build)
    return made


def one_error_line(err: str) -> str:
    """The one non-blank line a command printed, asserted to be alone and no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# Three problems, each with one right and one wrong candidate answer.
THREE_POOLS = {
    "What is 2 + 3?": ["ANSWER: 5", "ANSWER: 7"],
    "What is 4 + 6?": ["ANSWER: 10", "ANSWER: 11"],
    "What is 7 + 1?": ["ANSWER: 8", "ANSWER: 9"],
}


def three_rows() -> list[dict[str, Any]]:
    return [arith_row(2, 3, "a"), arith_row(4, 6, "c"), arith_row(7, 1, "d")]
