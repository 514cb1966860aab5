"""Fixtures for the end-to-end tier: a private temp root, tiny models, data, and a `main_ppo` runner.

These tests run only inside `.venv-e2e` (tests/e2e/run.sh builds it). Everything they write lives
under one short temporary folder (AF_UNIX socket paths stay under 107 characters), removed at the
end of the session unless DUPO_E2E_KEEP=1.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ppo_config import cpu_env, cpu_overrides, with_overrides  # noqa: E402
from runner import RunResult, run_job, run_main_ppo  # noqa: E402

REPO_ROOT = HERE.parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
GSM8K = SHARED_DATA / "math" / "gsm8k_test.jsonl"
FLORES = SHARED_DATA / "translation" / "flores_devtest"
RUN_TIMEOUT_S = float(os.environ.get("DUPO_E2E_TIMEOUT_S", "900"))

_RESULTS: list[tuple[str, RunResult]] = []


def module_available(name: str) -> bool:
    """True if `name` can be imported (a missing parent package counts as missing)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = [m for m in ("vllm", "verl", "verl_cpu_support", "psutil") if not module_available(m)]
    if missing:
        skip = pytest.mark.skip(reason=f"needs .venv-e2e (missing {', '.join(missing)}): run tests/e2e/run.sh")
        for item in items:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter) -> None:
    if not _RESULTS:
        return
    terminalreporter.section("main_ppo runs")
    for name, result in _RESULTS:
        terminalreporter.write_line(f"{name}: {result.summary()}")


def _short_tmp_parent() -> str:
    parent = tempfile.gettempdir()
    return parent if len(parent) <= 12 else "/tmp"


@pytest.fixture(scope="session")
def e2e_root() -> Iterator[Path]:
    """The session's only folder; the pytest process's own caches are pointed into it too."""
    root = Path(tempfile.mkdtemp(prefix="e2e", dir=_short_tmp_parent()))
    saved = {k: os.environ.get(k) for k in ("HF_HOME", "HF_HUB_OFFLINE", "XDG_CACHE_HOME")}
    os.environ.update(
        {"HF_HOME": str(root / "hf"), "HF_HUB_OFFLINE": "1", "XDG_CACHE_HOME": str(root / "xdg-cache")}
    )
    try:
        yield root
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if os.environ.get("DUPO_E2E_KEEP") == "1":
            print(f"\nDUPO_E2E_KEEP=1: kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _lines(path: Path, limit: int) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for _, line in zip(range(limit), fh, strict=False)]


def tokenizer_corpus() -> list[str]:
    """Default tiny-LM corpus plus real GSM8K and FLORES text, so prompts tokenize compactly."""
    from dupo_verl.demo.tiny_lm import default_corpus

    problems = [json.loads(line)["problem"] for line in _lines(GSM8K, 400)]
    flores = _lines(FLORES / "eng_Latn.txt", 200) + _lines(FLORES / "deu_Latn.txt", 200)
    return default_corpus() + problems + flores


@pytest.fixture(scope="session")
def tiny_policy(e2e_root: Path) -> Path:
    """Random-weight Qwen2 policy (head_dim 32) with a locally trained tokenizer."""
    from dupo_verl.demo.tiny_lm import build_tiny_lm

    return build_tiny_lm(e2e_root / "models" / "policy", corpus=tokenizer_corpus(), seed=0)


@pytest.fixture(scope="session")
def tiny_dual(e2e_root: Path) -> Path:
    """A second, independently initialised tiny model: the frozen dual."""
    from dupo_verl.demo.tiny_lm import build_tiny_lm

    return build_tiny_lm(e2e_root / "models" / "dual", corpus=tokenizer_corpus(), seed=1)


@pytest.fixture(scope="session")
def peaked_policy(e2e_root: Path, tiny_policy: Path) -> Path:
    """The tiny policy with its (tied) embeddings scaled x4, for the example scripts' runs.

    A random tiny model is nearly uniform (next-token entropy ~log V), so a vLLM server still on
    its dummy weights (verl's default `load_format=dummy`, which the scripts keep) would agree with
    the actor as well as a synced one, and the scripts' lr of 1e-6 moves nothing in two steps: the
    weight-sync check could not fail. Scaled, the entropy is ~5.7 nats instead of ~6.5 and a token
    drawn from dummy weights costs the actor ~0.14 more nats than it costs the server.
    """
    import torch
    from transformers import AutoModelForCausalLM

    out = e2e_root / "models" / "peaked_policy"
    shutil.copytree(tiny_policy, out)
    model = AutoModelForCausalLM.from_pretrained(tiny_policy, dtype=torch.float32)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(4.0)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def policy_tokenizer(tiny_policy: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_policy)


@dataclass
class PPORun:
    """Runs main_ppo jobs in numbered work folders under the session root."""

    root: Path
    model: Path

    def workdir(self, name: str) -> Path:
        index = len(list(self.root.glob("w*"))) + 1
        path = self.root / f"w{index}"
        path.mkdir()
        (path / "NAME").write_text(name)
        return path

    def __call__(
        self,
        name: str,
        *,
        train_files: Path,
        val_files: Path | None = None,
        extra: Sequence[str] = (),
        use_v1: bool = True,
        **sizes: int,
    ) -> tuple[RunResult, Path]:
        workdir = self.workdir(name)
        overrides = cpu_overrides(
            model_path=self.model,
            train_files=train_files,
            val_files=val_files or train_files,
            workdir=workdir,
            experiment=name,
            use_v1=use_v1,
            **sizes,
        )
        result = run_main_ppo(
            with_overrides(overrides, extra),
            workdir=workdir,
            env=cpu_env(workdir, shared_cache=self.root / "cache"),
            timeout_s=RUN_TIMEOUT_S,
        )
        _RESULTS.append((name, result))
        print(f"\n{name}: {result.summary()}")
        return result, workdir

    def script(self, name: str, script: Path, *, env: dict[str, str], extra: Sequence[str]) -> tuple[RunResult, Path]:
        """`bash <script> <extra...>` (the script execs main_ppo itself) with `env` over the CPU env."""
        workdir = self.workdir(name)
        result = run_job(
            ["bash", str(script), *extra],
            workdir=workdir,
            env={**cpu_env(workdir, shared_cache=self.root / "cache"), **env},
            timeout_s=RUN_TIMEOUT_S,
            log_name="main_ppo.log",
        )
        _RESULTS.append((name, result))
        print(f"\n{name}: {result.summary()}")
        return result, workdir


@pytest.fixture(scope="session")
def run_ppo(e2e_root: Path, tiny_policy: Path) -> Callable[..., tuple[RunResult, Path]]:
    return PPORun(root=e2e_root, model=tiny_policy)
