"""Generate the demo's inputs: `kdprobe.demo.write_demo_assets`.

Writes under the directory of `output.corpus` (every output lies below it); `params.settings` is the `demo:`
config section.
"""

from pathlib import Path

from kdprobe.demo import write_demo_assets
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(snakemake, lambda device: write_demo_assets(Path(snakemake.output.corpus).parent, dict(snakemake.params.settings)))
