"""Motion data: skeletons, HumanML3D features, mocap import, the embedded dataset and loaders.

This package imports nothing from the model stages (docs/design.md §1: data flows one way).
"""
