"""The DuckDB side of `mcpsiem bench query`: the same queries on the same Parquet files.

Reads a JSON spec on stdin ({"tables": {name: [files]}, "queries": [{"name", "sql"}],
"runs", "threads"}) and prints, as JSON, the best time of each query and its row count.
"""
import json
import sys
import time

import duckdb

spec = json.load(sys.stdin)
con = duckdb.connect()
con.execute(f"SET threads = {int(spec['threads'])}")
con.execute("SET TimeZone = 'UTC'")
for name, files in spec["tables"].items():
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listed}])")

figures = []
for query in spec["queries"]:
    best = None
    rows = 0
    for _ in range(max(1, int(spec["runs"]))):
        started = time.perf_counter()
        rows = con.execute(query["sql"]).to_arrow_table().num_rows
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    print(f"duckdb: {query['name']} {best:.3f}s", file=sys.stderr)
    figures.append({"name": query["name"], "seconds": best, "rows": rows})
json.dump(figures, sys.stdout)
