//! The validate step of a MautrixSignal: its input file and the config made from it (or from
//! nothing) with the values the operator owns, or the problem the user must fix. Pure.

use operator_common::input::{ConfigMapInput, InputProblem};

use crate::config::{Owned, Prepared, default_config, user_config};
use crate::names::CONFIG_MAP_KEY;
use crate::problems::{ConfigSource, Problem};

/// The user's config file and where it came from; `None` without `spec.configMap`.
pub fn input_file(
    input: Option<&ConfigMapInput>,
) -> Result<Option<(ConfigSource, String)>, Problem> {
    let Some(input) = input else {
        return Ok(None);
    };
    let (namespace, name) = (input.namespace.clone(), input.name.clone());
    match input.file(CONFIG_MAP_KEY) {
        Ok(file) => Ok(Some((ConfigSource::ConfigMap { namespace, name }, file))),
        Err(InputProblem::NotFound) => Err(Problem::ConfigMapNotFound { namespace, name }),
        Err(InputProblem::KeyMissing) => Err(Problem::ConfigMapKeyMissing { namespace, name }),
        Err(InputProblem::NotGranted(denied)) => Err(denied.into()),
    }
}

/// The config made from `file` (or from nothing), and where it came from.
pub fn config(
    file: Option<&(ConfigSource, String)>,
    owned: &Owned<'_>,
) -> (ConfigSource, Result<Prepared, Problem>) {
    let (origin, prepared) = match file {
        None => (ConfigSource::Default, default_config(owned)),
        Some((origin, file)) => (origin.clone(), user_config(file, owned)),
    };
    let prepared = prepared.map_err(|error| Problem::InvalidConfig {
        origin: origin.clone(),
        error,
    });
    (origin, prepared)
}
