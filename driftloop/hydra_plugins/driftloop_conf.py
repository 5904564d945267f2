"""Loaded by Hydra's plugin discovery, in `driftloop compose` and in
`dvc exp run` alike (.dvc/config: hydra.plugins_path = driftloop): registers the
typed config schema and the conf/ digest resolver before composition."""

from driftloop.config.compose import register

register()
