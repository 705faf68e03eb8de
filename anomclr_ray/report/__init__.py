"""Results: MLflow tracking (`tracking`), ROC / SI / ablation figures (`figures`), a study's report read
back from MLflow (`build`), and the MLflow UI on loopback (`ui`)."""
