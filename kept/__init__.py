"""kept: action difference reasoning with keypoint-guided tree search (KEPT).

Public entry points::

    from kept.config import load_config          # typed run config (YAML + key=value)
    from kept.data.folder import load_dataset     # keypoint-folder datasets
    from kept.model import KEPT                   # the model (a plain nn.Module)
    from kept.train import train, load_model      # training and trained models
    from kept.evaluate import evaluate_model      # metrics.json
"""

__version__ = "0.1.0"
