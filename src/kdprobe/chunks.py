"""Resumable chunked outputs for long jobs (sampling and logits shards).

A job writes its result as numbered parquet chunks in a state directory outside the rule's outputs
(`chunk{j:05d}.parquet`, each atomically), skips the chunks a killed predecessor finished, then joins them into
the final file row group by row group and removes them. `manifest.json` records what the chunks depend on
(the content digest of every model file, `digest.content_digests`; the inputs; the settings); chunks made under
another manifest are discarded, and the log names what changed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kdprobe.digest import what_changed
from kdprobe.io import atomic_path, read_json, write_json

log = logging.getLogger(__name__)


class ChunkStore:
    """Chunks of one job's output under `directory`, valid for `manifest`."""

    def __init__(self, directory: str | Path, manifest: dict[str, Any]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest = json.loads(json.dumps(manifest, sort_keys=True, default=str))  # as it reads back from disk
        path = self.directory / "manifest.json"
        old = read_json(path) if path.exists() else None
        if old != manifest:
            stale = sorted(self.directory.glob("chunk*.parquet"))
            if stale:
                log.warning("discarding %d chunks in %s made from other inputs or settings (changed: %s)",
                            len(stale), directory, what_changed(old, manifest))
            for p in stale:
                p.unlink()
            write_json(path, manifest)

    def path(self, j: int) -> Path:
        return self.directory / f"chunk{j:05d}.parquet"

    def done(self, j: int) -> bool:
        return self.path(j).exists()

    def write(self, j: int, table: pa.Table) -> None:
        with atomic_path(self.path(j)) as tmp:
            pq.write_table(table, tmp)

    def join(self, n_chunks: int, out_path: str | Path, schema: pa.Schema) -> int:
        """Copy chunks 0..n_chunks-1 into `out_path` (atomically, one row group each), then remove them."""
        n_rows = 0
        with atomic_path(out_path) as tmp:  # chunk by chunk: the rows are never all in memory at once
            with pq.ParquetWriter(tmp, schema) as writer:
                for j in range(n_chunks):
                    table = pq.read_table(self.path(j)).cast(schema)
                    writer.write_table(table)
                    n_rows += table.num_rows
        for p in self.directory.glob("chunk*.parquet"):
            p.unlink()
        (self.directory / "manifest.json").unlink(missing_ok=True)
        try:
            self.directory.rmdir()
        except OSError:
            pass
        return n_rows
