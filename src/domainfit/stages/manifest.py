"""``<workspace>/<stage>/manifest.json``: the inputs a stage's output was computed from, and its output files.

Format (``format_version`` 1; a stage may declare a later one of its own)::

    {"format_version": 1, "stage": "bench", "domainfit_version": "0.1.0",
     "inputs": {"data_sha256": "...", "config": {...}, ...},
     "outputs": {"metrics.json": {"sha256": "...", "bytes": 1234}, ...}}

A manifest is written last into the staged folder, so a stage folder with a
manifest is complete. One read back is trusted only when it names the same
stage and has the format version the stage writes: any other (an older or newer
domainfit, a damaged file) means the stage is out of date and runs again.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domainfit.core.files import atomic_write_json, sha256_file

MANIFEST = "manifest.json"
#: The format every stage writes unless it declares its own.
FORMAT_VERSION = 1


@dataclass
class Manifest:
    """A manifest read back: the stage, its format, the inputs it recorded and its output files."""

    stage: str
    format_version: int
    inputs: dict[str, Any]
    outputs: dict[str, Any]


def write_manifest(
    folder: Path, stage: str, inputs: dict[str, Any], outputs: list[str], format_version: int = FORMAT_VERSION
) -> None:
    """Write ``folder/manifest.json``: the stage, its inputs and each listed output file's hash and size.

    Inputs: the (staged) stage folder, the stage name, the fingerprinted inputs,
    the output files relative to the folder (missing ones are left out) and the format version.
    """
    from domainfit import __version__

    files = {}
    for name in outputs:
        file = folder / name
        if file.is_file():
            files[name] = {"sha256": sha256_file(file), "bytes": file.stat().st_size}
    atomic_write_json(
        folder / MANIFEST,
        {
            "format_version": format_version,
            "stage": stage,
            "domainfit_version": __version__,
            "inputs": inputs,
            "outputs": files,
        },
    )


def read_manifest(folder: Path, stage: str, format_version: int = FORMAT_VERSION) -> Manifest | None:
    """Return the stage folder's manifest, or None when it is absent, unreadable, of another stage or format."""
    path = folder / MANIFEST
    data: Any = None
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("stage") != stage or data.get("format_version") != format_version:
        return None
    inputs, outputs = data.get("inputs"), data.get("outputs")
    if not isinstance(inputs, dict) or not isinstance(outputs, dict):
        return None
    return Manifest(stage, format_version, inputs, outputs)


def outputs_intact(folder: Path, manifest: Manifest) -> bool:
    """Return True when every output file the manifest lists is there with its recorded size."""
    for name, entry in manifest.outputs.items():
        file = folder / name
        if not file.is_file() or (isinstance(entry, dict) and file.stat().st_size != entry.get("bytes")):
            return False
    return True
