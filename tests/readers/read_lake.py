"""Reads an mcpsiem lake with DuckDB and with pyarrow, as an analyst's own tools would, and
prints what each saw as JSON on stdout for tests/lake_external_readers.rs to compare."""

import json
import sys

import duckdb
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def with_duckdb(root):
    con = duckdb.connect()
    events = f"read_parquet('{root}/events/**/*.parquet', hive_partitioning = true)"
    ids = [r[0] for r in con.execute(f"SELECT event_id FROM {events} ORDER BY event_id").fetchall()]
    time_type = con.execute(f"SELECT typeof(event_time) FROM {events} LIMIT 1").fetchone()[0]
    per_date = dict(
        con.execute(f"SELECT CAST(date AS VARCHAR), count(*) FROM {events} GROUP BY ALL ORDER BY 1").fetchall()
    )
    # A partition-pruned query, the way analysts narrow months of events to one day.
    first_date = min(per_date)
    pruned = con.execute(f"SELECT count(*) FROM {events} WHERE date = '{first_date}'").fetchone()[0]
    dead = con.execute(
        f"SELECT reason, count(*) FROM read_parquet('{root}/deadletters/**/*.parquet', hive_partitioning = true) "
        "GROUP BY reason ORDER BY reason"
    ).fetchall()
    return {
        "ids": ids,
        "event_time_type": time_type,
        "per_date": per_date,
        "first_date_pruned_count": pruned,
        "dead_letters": {reason: n for reason, n in dead},
    }


def with_pyarrow(root):
    dataset = ds.dataset(f"{root}/events", format="parquet", partitioning="hive")
    table = dataset.to_table(columns=["event_id", "event_time"])
    ids = sorted(table.column("event_id").to_pylist())
    unsorted_files = []
    for fragment in dataset.get_fragments():
        times = pq.read_table(fragment.path, columns=["event_time"]).column("event_time")
        if len(times) > 1 and not pc.all(pc.greater_equal(times[1:], times[:-1])).as_py():
            unsorted_files.append(fragment.path)
    dead = ds.dataset(f"{root}/deadletters", format="parquet", partitioning="hive").count_rows()
    return {
        "ids": ids,
        "event_time_type": str(table.schema.field("event_time").type),
        "files": len(dataset.files),
        "files_not_sorted_by_time": unsorted_files,
        "dead_letters": dead,
    }


if __name__ == "__main__":
    root = sys.argv[1]
    print(json.dumps({"duckdb": with_duckdb(root), "pyarrow": with_pyarrow(root)}))
