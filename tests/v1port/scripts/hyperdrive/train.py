# An Azure ML v1 training script, unchanged: it imports azureml.core.
import argparse
import os
import pickle

from azureml.core import Run
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

parser = argparse.ArgumentParser()
parser.add_argument("--C", type=float, default=1.0)
parser.add_argument("--folds", type=int, default=5)
args = parser.parse_args()
run = Run.get_context()
X, y = load_breast_cancer(return_X_y=True)
model = LogisticRegression(C=args.C, max_iter=5000)
scores = cross_val_score(model, X, y, cv=args.folds)
for s in scores:
    run.log("fold_accuracy", float(s))
run.log("mean_accuracy", float(scores.mean()))
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.pkl", "wb") as fh:
    pickle.dump(model.fit(X, y), fh)
