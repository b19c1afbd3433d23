"""Pure metric functions on numpy arrays (no torch, no pytest)."""
from .localisation import average_precision, pr_auc_trapezoid, resize_map
from .similarity import hog_similarity, spearman, ssim

__all__ = ["average_precision", "pr_auc_trapezoid", "resize_map", "spearman", "ssim", "hog_similarity"]
