"""The run folder: the contract every stage (generation, scoring, reports, comparisons) reads and writes.
Its code lives in the store (evalsuite/store/: files.py, records.py, folder.py); this module keeps every
name importable from here, so `from evalsuite.runfolder import RunFolder, ItemRecord, ...` works as before.

    RUN_DIR/
      run.json                 RunInfo: resolved config per backend, versions, device, seeds, prompt-set hash
      prompts.jsonl            the prompts of the run (after --category/--limit), one JSON object a line
      plan.jsonl               PlanEntry per planned item: backend label, prompt id, seed, cache key, paths
      items/<backend>/<prompt-id>/s<seed>-<key12>.png    the image (PNG)
      items/<backend>/<prompt-id>/s<seed>-<key12>.json   ItemRecord; written after the image: its presence
                                                         means the item is finished (ok, failed or filtered)

Every file is written atomically (a temporary file in the same folder, then os.replace), so a killed
run leaves either the old file or the new one, never half of one; leftover temporary files are removed
at the next start. Files get the permissions the umask allows (0666 & ~umask), like any other file.
A damaged file (a truncated record, a broken plan line, an unreadable run.json) never stops a reader:
RunFolder.problems lists it by path and line, `evalsuite run` and `evalsuite check --repair` move it to
RUN_DIR/quarantine/ with a note (quarantine/NOTES.jsonl) and the item is generated again. Items are content-addressed: the key hashes everything that changes pixels, so a
changed setting gets new items that never mix with old ones.
"""

from __future__ import annotations

from .store.files import (TMP_MARK, atomic_write_bytes, atomic_write_json, atomic_write_text,  # noqa: F401
                          current_umask, remove_partial_files, stable_hash)
from .store.folder import (PNG_TRAILER, QUARANTINE, RunFolder, entry_from_record, image_problem,  # noqa: F401
                           load_json_model, quarantine, read_jsonl, records_on_disk, scan_jsonl, write_jsonl)
from .store.records import (SCHEMA_VERSION, BackendInfo, ItemRecord, PlanEntry, Problem, RunInfo,  # noqa: F401
                            Status, item_key, item_paths)

__all__ = ["TMP_MARK", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "current_umask",
           "remove_partial_files", "stable_hash", "PNG_TRAILER", "QUARANTINE", "RunFolder", "entry_from_record",
           "image_problem", "load_json_model", "quarantine", "read_jsonl", "records_on_disk", "scan_jsonl",
           "write_jsonl", "SCHEMA_VERSION", "BackendInfo", "ItemRecord", "PlanEntry", "Problem", "RunInfo", "Status",
           "item_key", "item_paths"]
