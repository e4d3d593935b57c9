"""Training, evaluation and checkpoints: `train(TrainConfig)` and `evaluate(...)`."""
