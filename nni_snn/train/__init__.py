"""Training machinery torch-side: the Lightning module and callbacks, devices, memory checks, energy estimates."""
