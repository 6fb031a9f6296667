"""Generate the demo's inputs: `kdprobe.demo.write_demo_assets`.

Expects `params.out_dir` (the directory the outputs lie under) and `params.settings` (the `demo:` config section).
"""

from kdprobe.demo import write_demo_assets
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(snakemake, lambda device: write_demo_assets(snakemake.params.out_dir, dict(snakemake.params.settings)))
