//! The validate step of a Heisenbridge: the registration file it announces, from its spec and
//! input, or the problem the user must fix. Pure but for new tokens, which come from the
//! operating system's CSPRNG.

use operator_common::error::Error;
use operator_common::input::{ConfigMapInput, InputProblem};
use operator_common::random::random_alphanumeric;

use crate::registration::{
    CONFIG_MAP_KEY, TOKEN_LENGTH, Tokens, default_registration, tokens_of, user_registration,
};
use crate::status::Problem;

/// The registration file for a bridge reached at `url`: the user's from `input`, checked; or the
/// default one with the tokens of the registration `stored` before, new ones for a new bridge.
pub fn registration(
    input: Option<&ConfigMapInput>,
    stored: Option<&[u8]>,
    url: &str,
) -> Result<Result<String, Problem>, Error> {
    let Some(input) = input else {
        let tokens = match stored.and_then(tokens_of) {
            Some(tokens) => tokens,
            None => Tokens {
                as_token: new_token()?,
                hs_token: new_token()?,
            },
        };
        return Ok(Ok(default_registration(url, &tokens)));
    };
    let (namespace, name) = (input.namespace.clone(), input.name.clone());
    let file = match input.file(CONFIG_MAP_KEY) {
        Ok(file) => file,
        Err(InputProblem::NotFound) => {
            return Ok(Err(Problem::ConfigMapNotFound { namespace, name }));
        }
        Err(InputProblem::KeyMissing) => {
            return Ok(Err(Problem::ConfigMapKeyMissing { namespace, name }));
        }
        Err(InputProblem::NotGranted(denied)) => return Ok(Err(denied.into())),
    };
    Ok(
        user_registration(&file, url).map_err(|error| Problem::InvalidRegistration {
            namespace,
            name,
            error,
        }),
    )
}

fn new_token() -> Result<String, Error> {
    random_alphanumeric(TOKEN_LENGTH)
        .map_err(|e| Error::transient("generate the app-service tokens", e))
}
