"""Naming benchmark: our parser vs guessit alone on guessit's own published test vectors.

Corpus: guessit's test vectors (`movies.yml`, `episodes.yml`, `various.yml`), LGPLv3 package data shipped
inside the installed guessit (`guessit/test/`, https://github.com/guessit-io/guessit); loaded and mapped
onto the scan's calls by tests/naming_corpus.py. A movie agrees when its title and year are the expected
ones; an episode when its season and episode numbers are.

Run: .venv/bin/python bench/naming_bench.py [--runs N] [--show-misses] [--check-fast]
--check-fast compares every answer a fast path gives (no guessit call) with guessit's on the same input.
Targets: agreement at least 97% of guessit's own score on movies and on episodes, and the whole list
parsed at least 2x faster than guessit alone (`guessit(name, {"type": kind})` on the same names).
Both are timed cold (our memos cleared), back to back in each run; the ratio is the median of the runs'
ratios. Times are this process's CPU seconds (time.process_time): other processes' CPU time is not
counted, though contention on this shared box still moves single runs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from naming_corpus import Case, guessit_agrees, load_corpus, ours_agrees, ours_episode, ours_movie  # noqa: E402

from agent.library import naming  # noqa: E402


def clear_memos() -> None:
    """Forget every memoised parse, so a run parses each name afresh."""
    for value in vars(naming).values():
        if hasattr(value, "cache_clear"):
            value.cache_clear()


def run_ours(cases: list[Case]) -> tuple[list[bool], float]:
    """Our parser on every case: (agreement per case, seconds)."""
    clear_memos()
    start = time.process_time()
    agreed = [ours_agrees(case) for case in cases]
    return agreed, time.process_time() - start


def run_guessit(cases: list[Case]) -> tuple[list[bool], float]:
    """guessit alone on every case, told the kind as the scan knows it: (agreement per case, seconds)."""
    from guessit import guessit

    start = time.process_time()
    guesses: list[dict[str, Any]] = [dict(guessit(case.name, {"type": case.kind})) for case in cases]
    elapsed = time.process_time() - start
    return [guessit_agrees(case, guess) for case, guess in zip(cases, guesses, strict=True)], elapsed


def fast_path_check(cases: list[Case]) -> tuple[int, list[str]]:
    """(cases answered without guessit, those whose fast answer differs from guessit's on the same input)."""
    calls: list[str] = []
    real = naming._guess
    naming._guess = lambda name, kind: calls.append(name) or real(name, kind)  # type: ignore[assignment]
    fast, differing = 0, []
    try:
        for case in cases:
            clear_memos()
            calls.clear()
            ours = answer(case)
            if calls:
                continue
            fast += 1
            guessed = guessit_answer(case)
            if ours != guessed:
                differing.append(f"{case.name!r}: fast {ours} guessit {guessed}")
    finally:
        naming._guess = real  # type: ignore[assignment]
    return fast, differing


def guessit_answer(case: Case) -> object:
    """guessit's answer on the input our parser gives it (folder and file name, as the scan passes them)."""
    parts = [part for part in case.name.replace("\\", "/").split("/") if part]
    folder = naming._without_ids(parts[-2]) if len(parts) > 1 else ""
    if case.kind == "movie":
        stem = naming.split_ext(parts[-1])[0] if naming.is_video(parts[-1]) else parts[-1]
        return naming._guess_movie.__wrapped__(naming._joined(folder, naming._without_ids(stem)))
    guessed = naming._guess_episode.__wrapped__(naming._joined(folder, naming._without_ids(parts[-1])))
    return (guessed[0], list(guessed[1])) if guessed else None


def answer(case: Case) -> object:
    """Our answer for a case, for the list of misses."""
    if case.kind == "movie":
        return ours_movie(case.name)
    parsed = ours_episode(case.name)
    return (parsed.season, parsed.episodes) if parsed else None


def report(cases: list[Case], ours: list[bool], theirs: list[bool], label: str, source: str = "") -> None:
    """One line of agreement for a kind of case (from one yml file, or all)."""
    picked = [i for i, case in enumerate(cases) if label in ("all", case.kind) and source in ("", case.source)]
    got = sum(ours[i] for i in picked)
    their = sum(theirs[i] for i in picked)
    share = 100.0 * got / their if their else 0.0
    label = f"{label} ({source})" if source else label
    print(f"  {label:24} {len(picked):5} cases: ours {got:4}, guessit {their:4}  ({share:.1f}% of guessit's score)")


def main() -> None:
    """Load the corpus, run both parsers, print agreement and speed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="timed runs (median reported)")
    parser.add_argument("--show-misses", action="store_true", help="list the names we get wrong and guessit right")
    parser.add_argument("--check-fast", action="store_true", help="compare every fast answer with guessit's")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    corpus = load_corpus()
    cases = corpus.cases
    print(
        f"guessit's test vectors: {corpus.total} entries, {len(cases)} usable; skipped {corpus.skipped_options} "
        f"with options, {corpus.skipped_negated} negated, {corpus.skipped_no_answer} without a title (movies) "
        f"or episode number (episodes)"
    )
    from guessit import guessit

    guessit("warm.up.2000.mkv")  # guessit builds its rules on first use: not part of either timing
    naming.parse_movie_name("", "warm.up.2000")
    ours_times, theirs_times, ratios = [], [], []
    ours: list[bool] = []
    theirs: list[bool] = []
    for _ in range(args.runs):  # each run times both on the same names, back to back: its ratio is paired
        ours, ours_time = run_ours(cases)
        theirs, theirs_time = run_guessit(cases)
        ours_times.append(ours_time)
        theirs_times.append(theirs_time)
        ratios.append(theirs_time / ours_time)
    ours_time, theirs_time = statistics.median(ours_times), statistics.median(theirs_times)
    print(f"Python {platform.python_version()}, {args.runs} run(s), medians")
    for label in ("movie", "episode", "all"):
        report(cases, ours, theirs, label)
    report(cases, ours, theirs, "movie", "movies.yml")
    report(cases, ours, theirs, "episode", "episodes.yml")
    print(
        f"  time: ours {ours_time:.2f} s, guessit alone {theirs_time:.2f} s, "
        f"guessit/ours {statistics.median(ratios):.1f}x (per run: {', '.join(f'{r:.1f}' for r in ratios)})"
    )
    if args.check_fast:
        fast, differing = fast_path_check(cases)
        print(f"  fast paths answered {fast} of {len(cases)} cases; {len(differing)} differ from guessit's answer")
        for line in differing:
            print(f"  FAST {line}")
    if args.show_misses:
        for case, mine, their in zip(cases, ours, theirs, strict=True):
            if their and not mine:
                expected = (case.title, case.year) if case.kind == "movie" else (case.season, case.episodes)
                print(f"  MISS [{case.source}] {case.name!r} expected {expected} got {answer(case)}")


if __name__ == "__main__":
    main()
