"""Resumable chunked outputs for long jobs (sampling and logits shards).

A job writes its result as numbered parquet chunks in a state directory outside the rule's outputs
(`chunk{j:05d}.parquet`, each atomically), skips the chunks a killed predecessor finished, then joins them into
the final file row group by row group and removes them. `manifest.json` records what the chunks depend on
(the content digest of every model file, `digest.content_digests`; the inputs; the settings; the code,
`digest.code_record`); chunks made under another manifest are discarded, and the log names what changed. An
unreadable manifest is set aside as `manifest.json.corrupt` (`io.set_aside`) and its chunks, which nothing vouches
for any more, are discarded; an unreadable chunk when they are joined is an `InputError` naming it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kdprobe.digest import code_record, what_changed
from kdprobe.errors import InputError
from kdprobe.io import atomic_path, read_json, set_aside, write_json

log = logging.getLogger(__name__)


class ChunkStore:
    """Chunks of one job's output under `directory`, valid for `manifest` and the code (`digest.code_record`)."""

    def __init__(self, directory: str | Path, manifest: dict[str, Any]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest = {**manifest, "code": code_record()}
        manifest = json.loads(json.dumps(manifest, sort_keys=True, default=str))  # as it reads back from disk
        path = self.directory / "manifest.json"
        old = _read_manifest(path)
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
                    try:
                        table = pq.read_table(self.path(j)).cast(schema)
                    except (OSError, pa.ArrowException) as exc:
                        raise InputError(self.path(j), f"unreadable chunk ({exc}); delete {self.directory} and "
                                                       "rerun the job") from None
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


def _read_manifest(path: Path) -> Any:
    """The manifest in `path`; None when there is none, or when it is unreadable (set aside, logged)."""
    if not path.exists():
        return None
    try:
        return read_json(path)
    except InputError as exc:  # the error names the file
        log.warning("unreadable chunk manifest %s: set aside as %s, its chunks are discarded", exc, set_aside(path))
        return None
