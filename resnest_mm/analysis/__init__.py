"""See how a model and a run went: FLOPs and parameters, training curves."""
