"""Training one run: data as whole tensors, the baseline net, the engine, metrics."""
