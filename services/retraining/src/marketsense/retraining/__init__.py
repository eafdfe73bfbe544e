"""The retraining worker: trains a challenger when live performance decays."""
