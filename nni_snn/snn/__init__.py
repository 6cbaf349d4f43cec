"""Spiking building blocks: neurons, operations, attention, spike and energy accounting, the hand-designed CNN."""
