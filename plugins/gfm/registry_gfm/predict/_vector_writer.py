"""The child process of :class:`~registry_gfm.predict._vectors.WriterProcess`: Arrow record batches on standard
input (one IPC stream whose schema metadata names the file, its format, layer and CRS) into a new GeoPackage, GeoJSON,
FlatGeobuf or GeoParquet file, while the parent traces the regions.

``python -m registry_gfm.predict._vector_writer``; a failure is one line on standard error and exit status 1.
Interrupts are left to the parent, which stops this process and removes its staging.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent answers it
    try:
        import pyarrow as pa
        import pyogrio.raw  # noqa: F401 - imported while the parent still predicts, not once batches come
        from pyproj import CRS

        from registry_gfm.predict._vectors import write_file

        with pa.ipc.open_stream(sys.stdin.buffer) as reader:
            header = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
            write_file(Path(header["path"]), header["format"], CRS.from_wkt(header["crs"]),
                       "probability" in reader.schema.names, reader, header["layer"])
    except Exception as exc:  # the parent reports it: one line, never a traceback
        print((str(exc).strip() or type(exc).__name__).splitlines()[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
