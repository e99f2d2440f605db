"""Train a classifier on scikit-learn's bundled breast-cancer data set with 5-fold CV.

Runs unchanged directly (``python train.py``: metrics are printed by the offline run) and
submitted to runyard (``runyard run submit train.py``: metrics, the model and the logs are
recorded in the workspace).
"""

import argparse
import os
import pickle

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from runyard import Run

parser = argparse.ArgumentParser()
parser.add_argument("--C", type=float, default=1.0, help="inverse regularization strength")
parser.add_argument("--folds", type=int, default=5)
args = parser.parse_args()

run = Run.get_context()
run.log("C", args.C)

X, y = load_breast_cancer(return_X_y=True)
scores = []
for fold, (train_idx, test_idx) in enumerate(
    StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=0).split(X, y)
):
    model = make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=1000))
    model.fit(X[train_idx], y[train_idx])
    acc = model.score(X[test_idx], y[test_idx])
    scores.append(acc)
    run.log("fold_accuracy", acc)
    run.log_row("folds", fold=fold, accuracy=acc, n_test=len(test_idx))
    print(f"fold {fold}: accuracy {acc:.4f}")

mean = sum(scores) / len(scores)
run.log("mean_accuracy", mean)
print(f"mean accuracy over {args.folds} folds: {mean:.4f}")

final = make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=1000)).fit(X, y)
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.pkl", "wb") as fh:
    pickle.dump(final, fh)
print("model written to outputs/model.pkl")
