"""kdprobe: task-specific distillation from BERT into small students, probed layer by layer."""

__version__ = "0.1.0"
