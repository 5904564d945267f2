"""Loaded by Hydra's plugin discovery, in `driftloop compose` and in
`dvc exp run` alike (.dvc/config: hydra.plugins_path = stages): registers the
typed config schema and the conf/ digest resolver before composition."""

from stages.config.compose import register

register()
