"""Evaluation: lmms-eval-format tasks (`tasks`), their published metrics (`metrics`), the runner (`runner`), the
model adapter (`model_adapter`), bundled sample data (`sample_data`), the lmms-eval plugin (`lmms_eval_plugin`)
and the encoder's attentive probe (`probe`). Nothing is imported here: each module loads its own dependencies."""
