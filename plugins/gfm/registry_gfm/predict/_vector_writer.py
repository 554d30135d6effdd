"""Vector files from Arrow record batches (GeoPackage, GeoJSON, FlatGeobuf through GDAL; GeoParquet), and the child
process of :func:`~registry_gfm.predict._vectors._write_piped` that writes one while the parent traces the regions.

The child is this file run by path (``python -P .../_vector_writer.py``), so it imports neither this package nor
pandas, GeoPandas, shapely or pyproj (pyogrio imports them only to detect them; writing needs none): it starts in
about 0.2 s instead of 0.6 s. It reads one Arrow IPC stream on standard input whose schema metadata names the file,
its format, layer and CRS; a failure is one line on standard error and exit status 1. Interrupts are left to the
parent, which stops this process and removes its staging.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

#: The output kind a vector file is marked with (as predict's rasters): what ``--overwrite`` may replace.
VECTOR_KIND: Final = "predict"
#: The tag (GPKG, FlatGeobuf layer metadata; GeoParquet key-value metadata) holding the output kind.
OUTPUT_TAG: Final = "REGISTRY_CORE_OUTPUT"
#: Modules pyogrio imports only to see whether they are installed: the child hides them (see the module's doc).
_UNNEEDED: Final = ("pandas", "geopandas", "shapely", "pyproj")


def schema(scored: bool) -> Any:
    """The features' columns; ``probability`` when the map came with probabilities."""
    import pyarrow as pa

    return pa.schema([("class", pa.int32()), ("name", pa.string()), ("pixels", pa.int64()), ("area_m2", pa.float64()),
                      *([("probability", pa.float64())] if scored else []), ("geometry", pa.binary())])


def write_file(path: Path, fmt: str, crs: tuple[str, str], scored: bool, batches: Iterable[Any], layer: str) -> None:
    """Record batches of :func:`schema` into a new file ``path`` of ``fmt`` (a GDAL driver or "GeoParquet");
    ``crs`` is the map's CRS as (WKT, PROJJSON)."""
    if fmt == "GeoParquet":
        _write_parquet(path, crs[1], scored, iter(batches))
    else:
        _write_ogr(path, fmt, crs[0], scored, iter(batches), layer)


def _write_parquet(path: Path, projjson: str, scored: bool, batches: Iterator[Any]) -> None:
    """GeoParquet 1.1: WKB geometries, the CRS as PROJJSON, a row group per batch."""
    import pyarrow.parquet as pq

    geo = {"version": "1.1.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"], "crs": json.loads(projjson)}}}
    columns = schema(scored).with_metadata({b"geo": json.dumps(geo).encode(), OUTPUT_TAG.encode(): VECTOR_KIND.encode()})
    with pq.ParquetWriter(path, columns) as writer:
        for batch in batches:
            writer.write_batch(batch.replace_schema_metadata(columns.metadata))


def _write_ogr(path: Path, driver: str, wkt: str, scored: bool, batches: Iterator[Any], layer: str) -> None:
    """GeoPackage, GeoJSON or FlatGeobuf through GDAL (pyogrio), the batches streamed in one write."""
    import pyarrow as pa
    from pyogrio.raw import write_arrow

    columns = schema(scored)
    geometry = columns.field("geometry").with_metadata({b"ARROW:extension:name": b"geoarrow.wkb"})
    columns = columns.set(columns.get_field_index("geometry"), geometry)
    reader = pa.RecordBatchReader.from_batches(columns, (b.cast(columns) for b in batches))
    mark = f"written by registry-core ({OUTPUT_TAG}={VECTOR_KIND})"
    # The layer carries the mark, not the dataset: GDAL readers of a GeoPackage with dataset metadata (pyogrio's
    # read_dataframe, QGIS) write a ``.aux.xml`` side file next to it.
    options: dict[str, Any] = {"layer_options": {"DESCRIPTION": mark}} if driver == "GeoJSON" else {
        "layer_metadata": {OUTPUT_TAG: VECTOR_KIND}}
    write_arrow(reader, str(path), layer=layer, driver=driver, geometry_name="geometry", geometry_type="Polygon",
                crs=wkt, **options)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent answers it
    for name in _UNNEEDED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # an import of it fails: pyogrio goes on
    try:
        import pyarrow as pa
        import pyogrio.raw  # noqa: F401 - imported while the parent still predicts, not once batches come

        with pa.ipc.open_stream(sys.stdin.buffer) as reader:
            header = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
            write_file(Path(header["path"]), header["format"], (header["crs"], header["projjson"]),
                       "probability" in reader.schema.names, reader, header["layer"])
    except Exception as exc:  # the parent reports it: one line, never a traceback
        print((str(exc).strip() or type(exc).__name__).splitlines()[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
