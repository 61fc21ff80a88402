"""What MLflow runs to load a logged model (a model from code, see tracking/raw_model.py).

Copied into every model; `tracking` and `tasks` come from the model's own code paths.
"""
from mlflow.models import set_model

from tracking.raw_model import python_model

set_model(python_model())
