"""Generate the demo's text: `kdprobe.demo.write_demo_data` (rule `demo_data`).

Writes under the directory of `output.corpus` (every output lies below it); `params.settings` is the part of the
`demo:` config section the text depends on.
"""

from pathlib import Path

from kdprobe.demo import write_demo_data
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(snakemake, lambda: write_demo_data(Path(snakemake.output.corpus).parent, dict(snakemake.params.settings)),
    device=False)
