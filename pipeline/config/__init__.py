"""What a run is configured by: the params schema and its loader, the allowed values of the design's conditions,
the language registry, the DAG's paths, seeds, and the precision this machine resolves ``auto`` to."""
