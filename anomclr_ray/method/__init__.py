"""The method, from events to metrics: augmentations (`augment`), encoders and their representations
(`model`), contrastive losses (`losses`), the autoencoder scorer (`score`), ROC / AUC / SI (`metrics`),
the study vocabulary built from their registries (`names`), and the evaluation pipeline that turns an
embedding of the splits into every metric (`evaluate`). Pure torch and numpy: no Ray, no MLflow."""
