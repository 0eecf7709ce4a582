"""Motion data: skeletons, HumanML3D features, mocap import, the embedded dataset and loaders.

This package imports nothing from the model stages (spec: data flows one way).
"""
