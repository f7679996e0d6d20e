"""samtune.inference: predictors for images and volumes, overlays."""
