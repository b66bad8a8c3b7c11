"""Datasets: the keypoint-folder format (folder.py), batching for training (datamodule.py) and the demo generator (demo/)."""
