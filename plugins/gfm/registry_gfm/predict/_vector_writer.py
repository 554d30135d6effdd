"""The child process of a large vector output: Arrow record batches on standard input (an IPC stream whose schema
carries the CRS) into a new GeoPackage, GeoJSON, FlatGeobuf or GeoParquet file, beside the tracing of the regions.

``python -m registry_gfm.predict._vector_writer PATH FORMAT LAYER``; a failure is one line on standard error and exit
status 1. Interrupts are left to the parent, which stops this process and removes its staging.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    import pyarrow as pa
    from pyproj import CRS

    from registry_gfm.predict._vectors import write_file

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent answers it
    path, fmt, layer = argv
    try:
        with pa.ipc.open_stream(sys.stdin.buffer) as reader:
            crs = CRS.from_wkt(reader.schema.metadata[b"crs"].decode())
            scored = "probability" in reader.schema.names
            write_file(Path(path), fmt, crs, scored, reader, layer)
    except Exception as exc:  # the parent reports it: one line, never a traceback
        print((str(exc).strip() or type(exc).__name__).splitlines()[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
