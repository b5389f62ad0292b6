"""Sparse pipeline (config.yml as is) vs. the same pipeline plus dense ja_ginza word vectors
for Japanese tokens (bench/ja_vectors.py), side by side on one snapshot of the data.

What it measures, for both pipelines in the same run:
  * fixed split: train on bot/data/nlu only (`rasa train nlu`), test on
    tests/data/nlu/heldout_<lang>.yml per language (as scripts/evaluate_nlu.py does);
  * N-fold cross-validation per language (each language's examples + the shared cues.yml);
  * training time (wall and CPU seconds), model size, per-message parse latency.

The extra virtualenv (kept apart from .venv-bot; it reuses .venv-bot's packages through a .pth
file and adds only spaCy + ja_ginza):

    ~/.pyenv/versions/3.10.13/bin/python -m venv /tmp/repr/venv
    echo /work/main/.venv-bot/lib/python3.10/site-packages \
        > /tmp/repr/venv/lib/python3.10/site-packages/zz_bot_base.pth
    ~/.pyenv/versions/3.10.13/bin/uv pip install --python /tmp/repr/venv/bin/python \
        --no-deps <the 23 pins listed in docs/representations.md, "How it was run">

Run (2 shared cores: everything runs under nice -n 15):

    /tmp/repr/venv/bin/python -m bench.compare_representations            # snapshot + all
    /tmp/repr/venv/bin/python -m bench.compare_representations --folds 3 --work /tmp/repr/run
    /tmp/repr/venv/bin/python -m bench.compare_representations --cv-only --languages en --work /tmp/repr/cv
    /tmp/repr/venv/bin/python -m bench.compare_representations --report   # print saved figures

The snapshot (bot/, config.yml, domain.yml, tests/data/nlu, bench/ja_vectors.py) goes to
<work>/../snap unless --snapshot names an existing one; both pipelines use it. Models and
Rasa's reports go under <work>; figures are saved to <work>/results.json after each step.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("ja", "en")
PIPELINES = ("sparse", "dense")
DENSE_ENTRY = (
    "  # Dense: ja_ginza word vectors for Japanese tokens only, zeros for English\n"
    "  # (bench/ja_vectors.py; vectors ship inside the PyPI package ja-ginza).\n"
    "  - name: bench.ja_vectors.JapaneseVectorFeaturizer\n"
)
LATENCY_SCRIPT = r"""
import asyncio, json, resource, statistics, sys, time, logging
logging.disable(logging.WARNING)
from rasa.core.agent import Agent
from rasa.shared.nlu.training_data.loading import load_data
model, files = sys.argv[1], sys.argv[2:]
t = time.perf_counter(); agent = Agent.load(model); load_s = time.perf_counter() - t
out = {"load_s": load_s}
async def run():
    await agent.parse_message("warm up")
    await agent.parse_message("ウォームアップ")
    for path in files:
        lang = path.rsplit("_", 1)[-1].split(".")[0]
        texts = [m.get("text") for m in load_data(path).training_examples]
        times = []
        for text in texts:
            t = time.perf_counter(); await agent.parse_message(text); times.append((time.perf_counter() - t) * 1000)
        times.sort()
        out[lang] = {"n": len(times), "median_ms": statistics.median(times),
                     "p95_ms": times[int(0.95 * (len(times) - 1))], "mean_ms": statistics.mean(times)}
asyncio.run(run())
out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("LATENCY " + json.dumps(out))
"""


def snapshot(dest: Path) -> str:
    """Copies what the model is made of; returns a hash of the copied data and code."""
    if not dest.exists():
        dest.mkdir(parents=True)
        shutil.copytree(ROOT / "bot", dest / "bot", ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("config.yml", "domain.yml"):
            shutil.copy(ROOT / name, dest / name)
        shutil.copytree(ROOT / "tests" / "data" / "nlu", dest / "tests" / "data" / "nlu")
    (dest / "bench").mkdir(exist_ok=True)
    for name in ("__init__.py", "ja_vectors.py"):
        shutil.copy(ROOT / "bench" / name, dest / "bench" / name)
    digest = hashlib.sha256()
    for path in sorted(
        p
        for base in ("bot/data", "bot/components", "tests/data/nlu")
        for p in (dest / base).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ):
        digest.update(path.relative_to(dest).as_posix().encode() + path.read_bytes())
    for name in ("config.yml", "domain.yml"):
        digest.update((dest / name).read_bytes())
    return digest.hexdigest()[:16]


def write_configs(snap: Path) -> dict:
    base = (snap / "config.yml").read_text()
    marker = "  - name: DIETClassifier\n"
    if marker not in base:
        raise SystemExit("config.yml has no DIETClassifier entry to put the dense featurizer before")
    dense = base.replace(marker, DENSE_ENTRY + marker, 1)
    (snap / "config_dense.yml").write_text(dense)
    return {"sparse": "config.yml", "dense": "config_dense.yml"}


class Runner:
    def __init__(self, snap: Path, work: Path, python: str):
        self.snap, self.work, self.python = snap, work, python
        self.env = {**os.environ, "PYTHONPATH": str(snap), "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}

    def run(self, args: list, log: Path) -> dict:
        """Runs `python <args>` under nice -n 15 in the snapshot; wall and CPU seconds."""
        log.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with log.open("w") as out:
            proc = subprocess.Popen(
                ["nice", "-n", "15", self.python, *args],
                cwd=self.snap,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            # wait4: this child's own CPU time (other steps may run at the same time)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if proc.returncode:
            raise RuntimeError(f"{args[:4]} failed ({proc.returncode}); see {log}")
        return {"wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1)}

    def rasa(self, args: list, log: Path) -> dict:
        return self.run(["-m", "rasa", *args], log)


def summary(report_path: Path) -> dict:
    report = json.loads(report_path.read_text())
    per_intent = {
        name: r["f1-score"]
        for name, r in report.items()
        if isinstance(r, dict) and "support" in r and name not in ("macro avg", "weighted avg", "micro avg")
    }
    return {
        "accuracy": round(report["accuracy"], 4),
        "macro_f1": round(report["macro avg"]["f1-score"], 4),
        "weakest": sorted(per_intent.items(), key=lambda pair: pair[1])[:3],
        "per_intent": per_intent,
    }


def fixed_split(runner: Runner, name: str, config: str, results: dict) -> None:
    out = runner.work / name
    model = out / "models" / f"{name}.tar.gz"
    timing = runner.rasa(
        [
            "train",
            "nlu",
            "--config",
            config,
            "--nlu",
            "bot/data/nlu",
            "--out",
            str(out / "models"),
            "--fixed-model-name",
            name,
        ],
        out / "train.log",
    )
    results[name]["train"] = {**timing, "model_mb": round(model.stat().st_size / 2**20, 2)}
    for language in LANGUAGES:
        report = out / f"heldout_{language}"
        runner.rasa(
            [
                "test",
                "nlu",
                "--model",
                str(model),
                "--nlu",
                f"tests/data/nlu/heldout_{language}.yml",
                "--out",
                str(report),
            ],
            out / f"test_{language}.log",
        )
        results[name]["heldout"][language] = summary(report / "intent_report.json")


def latency(runner: Runner, name: str, results: dict) -> None:
    """Loads the model like the server does and parses every held-out message once."""
    out = runner.work / name
    model = out / "models" / f"{name}.tar.gz"
    log = out / "latency.log"
    runner.run(["-c", LATENCY_SCRIPT, str(model), *(f"tests/data/nlu/heldout_{lang}.yml" for lang in LANGUAGES)], log)
    line = next(row for row in log.read_text().splitlines() if row.startswith("LATENCY "))
    results[name]["latency"] = json.loads(line[len("LATENCY ") :])


def cross_validation(runner: Runner, name: str, config: str, language: str, folds: int, results: dict) -> None:
    out = runner.work / name / f"cv{folds}_{language}"
    with tempfile.TemporaryDirectory(dir=runner.work) as data:
        nlu = runner.snap / "bot" / "data" / "nlu"
        for source in [*(nlu / language).glob("*.yml"), *nlu.glob("*.yml")]:
            shutil.copy(source, Path(data) / f"{source.parent.name}_{source.name}")
        timing = runner.rasa(
            [
                "test",
                "nlu",
                "--cross-validation",
                "--folds",
                str(folds),
                "--config",
                config,
                "--nlu",
                data,
                "--out",
                str(out),
            ],
            runner.work / name / f"cv{folds}_{language}.log",
        )
    results[name]["cv"][language] = {**summary(out / "intent_report.json"), **timing, "folds": folds}


def table(results: dict) -> str:
    def cell(section, language, key, name):
        value = results.get(name, {}).get(section, {}).get(language, {}).get(key)
        return "n/a" if value is None else f"{value:.3f}"

    lines = ["| measure | lang | sparse (today) | sparse + ja_ginza vectors | delta |", "|---|---|---|---|---|"]
    for section, label in (("heldout", "fixed split"), ("cv", f"{results.get('folds', '?')}-fold CV")):
        for language in LANGUAGES:
            for key, title in (("macro_f1", "macro F1"), ("accuracy", "accuracy")):
                a, b = cell(section, language, key, "sparse"), cell(section, language, key, "dense")
                delta = "n/a" if "n/a" in (a, b) else f"{float(b) - float(a):+.3f}"
                lines.append(f"| {label} {title} | {language} | {a} | {b} | {delta} |")

    def get(name, *keys):
        value = results.get(name, {})
        for key in keys:
            value = value.get(key, {}) if isinstance(value, dict) else {}
        return value if value != {} else None

    rows = [
        ("training wall s (NLU only)", ("train", "wall_s"), "{:.0f}"),
        ("training CPU s", ("train", "cpu_s"), "{:.0f}"),
        ("model .tar.gz MB", ("train", "model_mb"), "{:.1f}"),
        ("model load s", ("latency", "load_s"), "{:.1f}"),
        ("parse median ms, ja", ("latency", "ja", "median_ms"), "{:.1f}"),
        ("parse p95 ms, ja", ("latency", "ja", "p95_ms"), "{:.1f}"),
        ("parse median ms, en", ("latency", "en", "median_ms"), "{:.1f}"),
        ("parse p95 ms, en", ("latency", "en", "p95_ms"), "{:.1f}"),
        ("server max RSS MB", ("latency", "max_rss_mb"), "{:.0f}"),
    ]
    for language in LANGUAGES:
        rows.append((f"CV wall s, {language}", ("cv", language, "wall_s"), "{:.0f}"))
    lines += ["", "| cost | sparse (today) | sparse + ja_ginza vectors |", "|---|---|---|"]
    for title, keys, fmt in rows:
        values = [get(name, *keys) for name in PIPELINES]
        lines.append(f"| {title} | " + " | ".join("n/a" if v is None else fmt.format(v) for v in values) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/repr/run"))
    parser.add_argument("--snapshot", type=Path, default=None, help="default: <work>/../snap")
    parser.add_argument("--python", default=sys.executable, help="the dense venv's python (has rasa + spacy)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--no-cv", action="store_true")
    parser.add_argument(
        "--cv-only", action="store_true", help="only cross-validation, merged into an existing <work>/results.json"
    )
    parser.add_argument("--languages", default=",".join(LANGUAGES), help="for cross-validation, e.g. ja")
    parser.add_argument("--jobs", type=int, default=2, help="steps run at once (each under nice -n 15)")
    parser.add_argument("--report", action="store_true", help="only print the saved figures")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    saved = args.work / "results.json"
    if args.report:
        print(table(json.loads(saved.read_text())))
        return 0
    snap = args.snapshot or args.work.parent / "snap"
    data_hash = snapshot(snap)
    if args.cv_only and saved.exists():
        results = json.loads(saved.read_text())
        if results["data_hash"] != data_hash:
            raise SystemExit("the snapshot changed since results.json was written")
        results["folds"] = args.folds
        results.pop("failed", None)
    else:
        results = {
            "snapshot": str(snap),
            "data_hash": data_hash,
            "folds": args.folds,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "loadavg_start": os.getloadavg(),
            **{name: {"heldout": {}, "cv": {}} for name in PIPELINES},
        }
    configs = write_configs(snap)
    runner = Runner(snap, args.work, args.python)

    def save():
        saved.write_text(json.dumps(results, indent=1, ensure_ascii=False))

    lock = threading.Lock()

    def do(title, step, *step_args):
        print(f"[{time.strftime('%H:%M:%S')}] start {title}", flush=True)
        try:
            step(*step_args)
        except Exception as error:  # report what finished, name what did not
            print(f"[{time.strftime('%H:%M:%S')}] FAILED {title}: {error}", flush=True)
            results.setdefault("failed", []).append(title)
        with lock:
            save()
        print(f"[{time.strftime('%H:%M:%S')}] done {title}", flush=True)

    # The same step of both pipelines is queued side by side, so both see the same load.
    languages = [language for language in args.languages.split(",") if language]
    steps = (
        []
        if args.cv_only
        else [(f"fixed split, {name}", fixed_split, runner, name, configs[name], results) for name in PIPELINES]
    )
    if not args.no_cv:
        steps += [
            (
                f"{args.folds}-fold CV {language}, {name}",
                cross_validation,
                runner,
                name,
                configs[name],
                language,
                args.folds,
                results,
            )
            for language in languages
            for name in PIPELINES
        ]
    results["jobs"] = args.jobs
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in [pool.submit(do, *step) for step in steps]:
            future.result()
    # Latency last, one model at a time, with no training of ours running.
    for name in [] if args.cv_only else PIPELINES:
        if (args.work / name / "models" / f"{name}.tar.gz").exists():
            do(f"latency, {name}", latency, runner, name, results)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    results["loadavg_end"] = os.getloadavg()
    save()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
