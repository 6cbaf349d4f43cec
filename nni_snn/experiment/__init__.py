"""NNI experiments: nnictl, the manager's host, the trial side, tuners, the multi-trial baseline."""
