"""Saliency methods: a registry of name -> function returning raw attributions.

Every method receives a batch of images in pixel units (N, C, H, W) and
returns raw attributions of the same spatial size; postprocessing
(:mod:`.postprocess`) is shared, so every map that is compared was treated
identically.
"""
from .registry import CONTROLS, METHODS, MethodSpec, resolve_methods

__all__ = ["CONTROLS", "METHODS", "MethodSpec", "resolve_methods"]
