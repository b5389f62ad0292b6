"""Intent accuracy and macro F1 per language, on the held-out sets in tests/data/nlu.

    make evaluate-nlu            held-out sets (written apart from the training data)
    make evaluate-nlu CROSS=1    also 5-fold cross-validation on each language's data

Rasa's own reports (intent_report.json, confusion matrix) land in results/nlu/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RASA = str(Path(sys.executable).with_name("rasa"))  # beside the bot environment's python
LANGUAGES = ("ja", "en")


def summary(report_path: Path) -> dict:
    report = json.loads(report_path.read_text())
    return {
        "accuracy": report["accuracy"],
        "macro_f1": report["macro avg"]["f1-score"],
        "weakest": sorted(
            (
                (name, r["f1-score"])
                for name, r in report.items()
                if isinstance(r, dict) and "support" in r and name not in ("macro avg", "weighted avg", "micro avg")
            ),
            key=lambda pair: pair[1],
        )[:3],
    }


def held_out(model: str, out_root: Path = ROOT / "results" / "nlu", prefix: str = "heldout_") -> dict:
    """Rasa's NLU test of `model` on each language's fixed held-out file; the reports go to
    <out_root>/<prefix><language>/ (intent_report.json, intent_errors.json, the images)."""
    results = {}
    for language in LANGUAGES:
        out = out_root / f"{prefix}{language}"
        subprocess.run(
            [
                RASA,
                "test",
                "nlu",
                "--model",
                model,
                "--nlu",
                f"tests/data/nlu/heldout_{language}.yml",
                "--out",
                str(out),
            ],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        results[language] = summary(out / "intent_report.json")
    return results


def cross_validated(folds: int) -> dict:
    """Each language's examples on their own, with the shared cue patterns (nlu/*.yml)."""
    results = {}
    for language in LANGUAGES:
        out = ROOT / "results" / "nlu" / f"cv_{language}"
        with tempfile.TemporaryDirectory() as data:
            for source in [*(ROOT / "bot/data/nlu" / language).glob("*.yml"), *(ROOT / "bot/data/nlu").glob("*.yml")]:
                shutil.copy(source, Path(data) / f"{source.parent.name}_{source.name}")
            subprocess.run(
                [
                    RASA,
                    "test",
                    "nlu",
                    "--cross-validation",
                    "--folds",
                    str(folds),
                    "--config",
                    "config.yml",
                    "--nlu",
                    data,
                    "--out",
                    str(out),
                ],
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        results[language] = summary(out / "intent_report.json")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cross-validation", action="store_true")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    model = (
        subprocess.run([str(ROOT / "scripts" / "train.sh")], cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    sections = {"held-out": held_out(str(ROOT / model))}
    if args.cross_validation:
        sections[f"{args.folds}-fold cross-validation"] = cross_validated(args.folds)
    for title, results in sections.items():
        print(f"\n{title}")
        for language, figures in results.items():
            weakest = ", ".join(f"{name} {f1:.2f}" for name, f1 in figures["weakest"])
            print(
                f"  {language}: accuracy {figures['accuracy']:.3f}  macro F1 {figures['macro_f1']:.3f}  weakest: {weakest}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
