"""The package as users get it: the sdist and the wheel built from this repository's files, the
wheel installed (not editable) into a fresh venv, and used from there the way the README does.

The fresh venv gets the wheel alone (`pip install --no-deps --no-index`); its third-party
dependencies (verl, torch, ...) come from the venv running this test through a `.pth` line naming
that venv's site-packages. A `.pth` line only adds a folder to `sys.path`: the `.pth` files inside
it, among them the editable install's finder, are not run, so the only `dupo_verl` the fresh venv
can import is the installed wheel (checked below). Everything runs offline: `python -m build
--no-isolation` builds with the `setuptools` of the test extra.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

pytestmark = pytest.mark.slow  # builds and installs the package once per module (1-2 minutes)

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("dupo_verl", "reward_fns")
NOT_SHIPPED = ("dupo_verl/demo/",)  # runs from a clone (`make demo`); see pyproject's packages.find
# The one shipped module that may name the demo package: it says the demos run from a clone.
DEMO_CLI = "dupo_verl/cli/demo.py"
TIMEOUT_S = 600


def _run(argv: list[str | Path], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=TIMEOUT_S, **kwargs)
    assert proc.returncode == 0, f"{argv[:4]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@functools.cache
def _repo_files() -> list[str]:
    """The files a commit of this checkout would hold (tracked, or new and not ignored)."""
    proc = _run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    return sorted(f for f in proc.stdout.split("\0") if f and (REPO / f).is_file())


@dataclass(frozen=True)
class Install:
    sdist: Path
    wheel: Path
    python: Path  # the fresh venv's interpreter
    bin: Path
    site: Path  # the fresh venv's site-packages, where the wheel went
    env: dict[str, str]
    cwd: Path  # outside the repository

    def dupo_verl(self, *args: str) -> subprocess.CompletedProcess:
        """The installed `dupo-verl` console script (not checked for success)."""
        return subprocess.run([str(self.bin / "dupo-verl"), *args], capture_output=True, text=True,
                              timeout=TIMEOUT_S, env=self.env, cwd=self.cwd)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Install:
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for name in _repo_files():  # a clean copy: nothing the checkout has built or left lying around
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    dist = root / "dist"
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, src])  # sdist, then wheel from it
    (sdist,), (wheel,) = sorted(dist.glob("*.tar.gz")), sorted(dist.glob("*.whl"))

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel])
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    base = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "_dupo_test_dependencies.pth").write_text("".join(f"{p}\n" for p in base))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}  # no PYTHONPATH & co
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    cwd = root / "work"
    cwd.mkdir()
    return Install(sdist, wheel, python, venv / "bin", site, env, cwd)


def _probe(install: Install, script: str, *args: str) -> dict:
    """Run `script` with the fresh venv's python; it prints one line `STATE<json>`."""
    proc = _run([install.python, "-c", script, *args], env=install.env, cwd=install.cwd)
    return json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("STATE"))[len("STATE"):])


def test_the_sdist_and_the_wheel_hold_the_package_and_nothing_else(installed):
    ours = [f for f in _repo_files() if f.startswith(tuple(f"{p}/" for p in PACKAGES))]
    shipped = [f for f in ours if not f.startswith(NOT_SHIPPED)]
    assert "dupo_verl/config/dupo_agent_loop.yaml" in shipped and "dupo_verl/tasks/README.md" in shipped
    assert any(f.startswith(NOT_SHIPPED) for f in ours)  # the exclusion below excludes something real

    names = zipfile.ZipFile(installed.wheel).namelist()
    dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    assert {n.split("/")[0] for n in names} == {*PACKAGES, dist_info}
    assert set(shipped) <= set(names), sorted(set(shipped) - set(names))
    assert not [n for n in names if n.startswith(NOT_SHIPPED)]
    entry_points = zipfile.ZipFile(installed.wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "dupo-verl = dupo_verl.cli:main" in entry_points and "dupo_verl = dupo_verl.plugin" in entry_points

    with tarfile.open(installed.sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    assert {"pyproject.toml", "README.md", *shipped} <= members, sorted({*shipped} - members)


def test_the_installed_package_is_the_wheel_not_the_repository(installed):
    state = _probe(installed, """
import importlib.util, json, sys
import dupo_verl, reward_fns
print("STATE" + json.dumps({
    "files": [dupo_verl.__file__, reward_fns.__file__],
    "path": sys.path,
    "finders": [type(f).__module__ for f in sys.meta_path],
    "demo": importlib.util.find_spec("dupo_verl.demo") is not None,
}))
""")
    for file in state["files"]:
        assert Path(file).is_relative_to(installed.site), file
    entries = [installed.cwd / p for p in state["path"]]  # "" (python -c) is the working folder
    assert REPO not in entries
    # the only folder on sys.path with our packages is the fresh site-packages (not the checkout)
    assert [p for p in entries if any((p / name).exists() for name in PACKAGES)] == [installed.site]
    assert not [m for m in state["finders"] if "editable" in m]
    assert state["demo"] is False


PROBE_VERL = r"""
import inspect, json, sys
from pathlib import Path

import verl
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import OmegaConf

from verl.experimental.agent_loop.agent_loop import AgentLoopWorker, _agent_loop_registry
from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
from verl.trainer.ppo.v1 import get_trainer_cls

state = {"plugin_agent_loop": dict(_agent_loop_registry.get("dupo_agent") or {})}
manager = get_reward_manager_cls("dupo")
state["reward_manager"] = [manager.__qualname__, inspect.getfile(manager)]
state["trainers"] = {m: [get_trainer_cls(m).__qualname__, inspect.getfile(get_trainer_cls(m))]
                     for m in ("dupo_sync", "dupo_colocate_async", "dupo_separate_async")}

# what main_ppo's workers do with `agent_loop_config_path`: verl's own AgentLoopWorker reads the YAML
config_path, model_path = sys.argv[1], sys.argv[2]
with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
    config = compose("ppo_trainer", overrides=[
        f"actor_rollout_ref.model.path={model_path}",
        "actor_rollout_ref.rollout.name=vllm",
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={config_path}",
    ])
AgentLoopWorker(config, llm_client=None)
entry = OmegaConf.to_container(_agent_loop_registry["dupo_agent"])
state["worker_agent_loop"] = entry
state["agent_loop_class"] = inspect.getfile(get_class(entry["_target_"]))
print("STATE" + json.dumps(state))
"""


def test_import_verl_registers_our_names_and_reads_the_agent_loop_yaml(installed, tiny_model_path):
    proc = installed.dupo_verl("agent-loop-config")
    assert proc.returncode == 0, proc.stderr
    config_path = Path(proc.stdout.strip())
    assert config_path.is_file() and config_path.is_relative_to(installed.site)

    state = _probe(installed, PROBE_VERL, str(config_path), str(tiny_model_path))
    # `import verl` alone (the verl.plugins entry point of the wheel) registered every name
    assert state["plugin_agent_loop"] == {"_target_": "dupo_verl.verl.agent_loop.DuPOAgentLoop"}
    assert state["reward_manager"][0] == "DuPORewardManager"
    assert {m: q for m, (q, _) in state["trainers"].items()} == {
        "dupo_sync": "DuPOTrainerSync",
        "dupo_colocate_async": "DuPOTrainerColocateAsync",
        "dupo_separate_async": "DuPOTrainerSeparateAsync",
    }
    files = [state["reward_manager"][1], *(f for _, f in state["trainers"].values()), state["agent_loop_class"]]
    assert all(Path(f).is_relative_to(installed.site) for f in files), files
    # ... and verl's worker replaced the plugin's entry by the packaged YAML's (with its `name`)
    packaged = next(e for e in yaml.safe_load(config_path.read_text()) if e["name"] == "dupo_agent")
    assert state["worker_agent_loop"] == packaged


def test_prepare_math_on_shared_data(installed, shared_data, tmp_path):
    src = shared_data / "math" / "amc2023.jsonl"
    out = tmp_path / "amc.parquet"
    proc = installed.dupo_verl("prepare", "math", "--input", str(src), "--output", str(out),
                               "--answer-key", "answer", "--val-fraction", "0.25", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(Path(f"{out}.summary.json").read_text())
    rows = pq.read_table(out).to_pylist() + pq.read_table(tmp_path / "amc_val.parquet").to_pylist()
    assert summary["rows_read"] == 40 and len(rows) == summary["rows_kept"] > 30
    assert all(r["agent_name"] == "dupo_agent" and r["extra_info"]["dupo"]["duals"] for r in rows)


def test_demo_says_to_run_from_a_clone(installed):
    assert installed.dupo_verl("--help").returncode == 0
    proc = installed.dupo_verl("demo", "two-sum", "--output", "out")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "git clone" in proc.stderr and "make demo" in proc.stderr
    assert not (installed.cwd / "out").exists()


# ---------------------------------------------------------------- what the installed code names
# Scanned: every .py/.yaml/.md of the install (code, docstrings, comments) and the entry points.
# - `tests/` is never named (the tests are not shipped);
# - our modules (dotted names, `from ... import`), paths (dupo_verl/...) and file names resolve
#   in the install;
# - a pointer into the project's documentation (docs/..., benchmarks/...: the provenance of a
#   number, the README's results) is allowed, but it must exist in the repository.

_TESTS = re.compile(r"(?<![\w-])tests/")
_DOTTED = re.compile(r"(?<![\w.])(?:dupo_verl|reward_fns)(?:\.[A-Za-z_]\w*)+")
_PATH = re.compile(r"(?<![\w./-])(?:[\w.-]+/)+[\w.*-]+")  # relative paths (a/b, a/b/*.yaml)
_FILE = re.compile(r"(?<![\w./-])[\w-]+\.(?:py|ya?ml|md|json|toml|sh|txt)\b")


def _module_file(site: Path, module: str) -> Path | None:
    base = site.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return base if base.is_dir() else None  # a namespace package (dupo_verl.config)


def _top_level_names(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _resolves(site: Path, dotted: str) -> bool:
    """A module of the install, or a top-level name defined in one (`pkg.mod.Class.method` too)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        found = _module_file(site, ".".join(parts[:cut]))
        if found is not None:
            if cut == len(parts):
                return True
            sub = found if found.is_file() else None
            return sub is not None and parts[cut] in _top_level_names(sub)
    return False


def _named_in(text: str, rel: str, tree: ast.Module | None) -> set[str]:
    dotted = set(_DOTTED.findall(text))
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith(PACKAGES):
            dotted |= {f"{node.module}.{a.name}" for a in node.names}
    if rel == DEMO_CLI:
        dotted = {d for d in dotted if not d.startswith("dupo_verl.demo")}
    return dotted


def scan(site: Path) -> tuple[int, list[str]]:
    """(files scanned, one line per name that does not resolve) for the packages installed in `site`."""
    repo_files = _repo_files()
    repo_top = {f.split("/")[0] for f in repo_files}
    our_basenames = {Path(f).name for f in repo_files if f.startswith(tuple(f"{p}/" for p in PACKAGES))}
    installed = [p for pkg in PACKAGES for p in (site / pkg).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    installed_basenames = {p.name for p in installed}
    scanned = [p for p in installed if p.suffix in (".py", ".yaml", ".md")]
    scanned += [p for p in site.glob("dupo_verl-*.dist-info/entry_points.txt")]

    problems = []
    for path in scanned:
        rel = path.relative_to(site).as_posix()
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text) if path.suffix == ".py" else None
        for dotted in sorted(_named_in(text, rel, tree)):
            if not _resolves(site, dotted):
                problems.append(f"{rel}: names {dotted}, which is not in the install")
        problems += [f"{rel}:{n}: names tests/, which is never shipped: {line.strip()}"
                     for n, line in enumerate(text.splitlines(), 1) if _TESTS.search(line)]
        for ref in sorted(set(_PATH.findall(text))):
            top = ref.split("/")[0]
            if top in PACKAGES:
                if not list(site.glob(ref)):
                    problems.append(f"{rel}: names {ref}, which is not in the install")
            elif top in repo_top and not list(REPO.glob(ref)):  # a pointer to the project's docs: not stale
                problems.append(f"{rel}: names {ref}, which is neither installed nor in the repository")
        for name in sorted(set(_FILE.findall(text))):
            if name in our_basenames and name not in installed_basenames:
                problems.append(f"{rel}: names {name}, which is not in the install")
    return len(scanned), problems


def test_every_file_the_installed_code_names_is_installed(installed):
    scanned, problems = scan(installed.site)
    assert scanned > 50  # the scan saw the package
    assert not problems, "\n".join(problems)


def test_the_scan_reports_each_kind_of_dangling_name(tmp_path):
    """The scan itself, on a planted install: what it must flag, and what it must let through."""
    pkg = tmp_path / "dupo_verl"
    (pkg / "config").mkdir(parents=True)
    (pkg / "__init__.py").write_text("__version__ = '0'\n")
    (pkg / "config" / "dupo_agent_loop.yaml").write_text("- name: x\n  _target_: dupo_verl.good.Thing\n")
    (pkg / "good.py").write_text(
        '"""See docs/architecture.md and dupo_verl/config/*.yaml; dupo_verl.good.Thing.run."""\n'
        "from dupo_verl import __version__\n"
        "class Thing:\n    path = 'config/dupo_agent_loop.yaml'\n"
    )
    (pkg / "bad.py").write_text(
        "# like tests/e2e/setup_venv.sh\n"
        "from dupo_verl.good import Missing\n"
        "TARGET = 'dupo_verl.nowhere.Thing'\n"
        "DOC = 'dupo_verl/demo/two_sum_demo.py, docs/no_such_page.md, two_sum_demo.py'\n"
    )
    scanned, problems = scan(tmp_path)
    assert scanned == 4
    text = "\n".join(problems)
    assert not [p for p in problems if p.startswith(("dupo_verl/good.py", "dupo_verl/config"))], text
    for expected in (
        "bad.py:1: names tests/",
        "names dupo_verl.good.Missing",
        "names dupo_verl.nowhere.Thing",
        "names dupo_verl/demo/two_sum_demo.py, which is not in the install",
        "names docs/no_such_page.md, which is neither installed nor in the repository",
        "names two_sum_demo.py, which is not in the install",
    ):
        assert expected in text, (expected, text)
