"""The controller: what runs the loop around the DAG (loop, experiments, snapshot,
simulate, status, report, init-data, rollback). It runs stages through dvc only."""
