"""scikit-learn's counterpart of each Fashion-MNIST study, fitted on the same training split.

    python benchmarks/sklearn_counterparts.py [--only NAME ...]

LinearSVC runs last and may not finish here (see counterparts()).

Same data as the studies: the real Fashion-MNIST (`apt-get install dataset-fashion-mnist`),
hpsearch's split with seed 0 (54,000 training images, standardized with the training split's
statistics), the 10,000 test images. Each estimator is fitted once with scikit-learn's
defaults (plus what the row says) on the 54,000 training images; printed: its test accuracy and
its fit time on this machine (all cores where the estimator uses them). The studies' own rows
(best validation accuracy, test accuracy after `hpsearch retrain`, wall time of the search) are
in docs/assignments.md beside these, so a reader sees what the search bought and what it
cost.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hpsearch.models.data import load_dataset  # noqa: E402


def counterparts() -> dict[str, object]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.linear_model import Perceptron
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import LinearSVC

    return {
        "LogisticRegression (lbfgs, max_iter 200)": LogisticRegression(max_iter=200),
        "Perceptron (max_iter 1000, tol 1e-3)": Perceptron(random_state=0),
        "MLPClassifier(100) (adam, early stopping)": MLPClassifier(
            (100,), early_stopping=True, random_state=0
        ),
        # Last, so that the others print first: neither the default dual solver (stopped after
        # 15 minutes) nor the primal one (dual=False, stopped after 13 minutes) finished on
        # this 2-core machine. `--only LogisticRegression Perceptron MLPClassifier` skips it.
        "LinearSVC (C 1, primal)": LinearSVC(dual=False, random_state=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="names starting with these words")
    args = parser.parse_args()
    data = load_dataset("fashion-mnist", val_fraction=0.1, seed=0)
    X, y = np.asarray(data.X_train), data.y_train
    X_test, y_test = np.asarray(data.X_test), data.y_test
    print(f"# Fashion-MNIST: {len(y)} training images, {len(y_test)} test images\n")
    print("| scikit-learn | test accuracy | fit seconds |\n|---|---|---|")
    for name, estimator in counterparts().items():
        if args.only and not any(name.startswith(w) for w in args.only):
            continue
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: the defaults, as they are
            estimator.fit(X, y)
        seconds = time.perf_counter() - start
        accuracy = float(np.mean(estimator.predict(X_test) == y_test))
        print(f"| {name} | {accuracy:.4f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
