"""The Keras L1 models (float twins and HGQ2 / QKeras-style QAT): layers, architectures, configs,
storage, training and scoring."""
