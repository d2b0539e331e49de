//! The one error surface of every reconciliation. Each way a reconciliation can go wrong is one
//! [`ErrorKind`], whose label means the same in the logs and metrics of every operator:
//!
//! - a user problem (bad input) is not an error at all: the status step reports it as a condition
//!   with a Warning Event, and nothing is retried until an input changes;
//! - an API refusal the user can fix (403, 422, 400, 409 on a field another manager owns) is a
//!   [`Refusal`]: the pipeline records it on the object (condition, Warning Event) and retries
//!   with backoff;
//! - anything else is transient: retried with backoff, and logged.

use std::fmt;

use kube::core::Status;

/// How a reconciliation failed. (A user problem is not a failure: the reconciliation reports it
/// and waits for the input to change.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The API server refused a request for lack of permission (HTTP 403).
    Forbidden,
    /// The API server refused an object as invalid (HTTP 422 or 400).
    Invalid,
    /// Server-side apply refused a field another field manager owns (HTTP 409).
    FieldConflict,
    /// Worth retrying as it is: network, timeouts, 5xx, 429, an object changed or created
    /// concurrently.
    Transient,
}

impl ErrorKind {
    /// Stable, low-cardinality label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Invalid => "invalid",
            ErrorKind::FieldConflict => "field-conflict",
            ErrorKind::Transient => "transient",
        }
    }
}

/// A reconciliation that failed; the controller retries it with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused a request; the message says what to fix.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A failure worth retrying as it is.
    #[error("cannot {action}: {source}")]
    Transient {
        /// What was attempted, e.g. `read ConfigMap ns/name`.
        action: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl Error {
    /// A transient failure of `action`.
    pub fn transient(
        action: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error::Transient {
            action: action.into(),
            source: source.into(),
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Refused(refusal) => refusal.kind,
            Error::Transient { .. } => ErrorKind::Transient,
        }
    }
}

/// A request the API server refused in a way only a change by the user (or an administrator)
/// can fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Refusal {
    /// [`ErrorKind::Forbidden`], [`ErrorKind::Invalid`] or [`ErrorKind::FieldConflict`].
    pub kind: ErrorKind,
    /// What was refused, e.g. `apply Service ns/my.synapse`.
    pub action: String,
    /// The API server's message, which names the object and the field.
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = match self.kind {
            ErrorKind::Forbidden => {
                "grant the permission to the operator's ServiceAccount (its Helm chart's RBAC \
                 rules list them)"
            }
            ErrorKind::FieldConflict => {
                "another field manager owns that field: remove it from the other manager's \
                 configuration, or leave the field to the operator"
            }
            _ => {
                "change the spec (or the object's name) so that what the operator derives from it is valid"
            }
        };
        write!(
            f,
            "the API server refused to {}: {}; {hint}",
            self.action, self.message
        )
    }
}

impl Refusal {
    /// The condition and Event reason that names this refusal.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::FieldConflict => "FieldConflict",
            _ => "Invalid",
        }
    }
}

/// Classifies the failure of `action` (e.g. `apply Service ns/name`).
pub fn classify(action: impl Into<String>, error: kube::Error) -> Error {
    let action = action.into();
    if let kube::Error::Api(status) = &error
        && let Some(kind) = refusal_kind(status)
    {
        return Error::Refused(Refusal {
            kind,
            action,
            message: status.message.clone(),
        });
    }
    Error::Transient {
        action,
        source: Box::new(error),
    }
}

/// `classify` as a closure for `map_err`.
pub fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |error| classify(action, error)
}

/// Which refusal a Status is, if it is one the user can fix.
fn refusal_kind(status: &Status) -> Option<ErrorKind> {
    match status.code {
        403 => Some(ErrorKind::Forbidden),
        400 | 422 => Some(ErrorKind::Invalid),
        // 409 is also a stale resourceVersion or a create that lost a race: transient.
        409 if is_field_manager_conflict(status) => Some(ErrorKind::FieldConflict),
        _ => None,
    }
}

fn is_field_manager_conflict(status: &Status) -> bool {
    status
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "FieldManagerConflict"))
        || status.message.starts_with("Apply failed with")
}

#[cfg(test)]
mod tests {
    use kube::core::response::{StatusCause, StatusDetails};

    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, reason).with_code(code).boxed())
    }

    #[test]
    fn refusals_the_user_can_fix_are_told_apart_from_transient_failures() {
        let kind = |e: kube::Error| classify("apply Service ns/x", e).kind();
        assert_eq!(kind(api(403, "Forbidden", "no")), ErrorKind::Forbidden);
        assert_eq!(kind(api(422, "Invalid", "bad name")), ErrorKind::Invalid);
        assert_eq!(kind(api(400, "BadRequest", "quantity")), ErrorKind::Invalid);
        assert_eq!(
            kind(api(
                409,
                "Conflict",
                "Apply failed with 1 conflict: .spec.replicas"
            )),
            ErrorKind::FieldConflict
        );
        let mut owned = Status::failure("conflict", "Conflict").with_code(409);
        owned.details = Some(StatusDetails {
            name: "x".into(),
            group: "apps".into(),
            kind: "deployments".into(),
            uid: String::new(),
            causes: vec![StatusCause {
                reason: "FieldManagerConflict".into(),
                message: "conflict with kubectl".into(),
                field: ".spec.replicas".into(),
            }],
            retry_after_seconds: 0,
        });
        assert_eq!(
            kind(kube::Error::Api(owned.boxed())),
            ErrorKind::FieldConflict
        );
        for transient in [
            api(409, "Conflict", "the object has been modified"),
            api(409, "AlreadyExists", "secrets \"x\" already exists"),
            api(500, "InternalError", "etcd"),
            api(429, "TooManyRequests", "slow down"),
            api(404, "NotFound", "gone"),
        ] {
            assert_eq!(kind(transient), ErrorKind::Transient);
        }
    }

    #[test]
    fn a_refusal_names_the_request_the_server_message_and_the_fix() {
        let Error::Refused(refusal) = classify(
            "apply Service ns/my.synapse",
            api(
                422,
                "Invalid",
                "Service \"my.synapse\" is invalid: metadata.name: Invalid value",
            ),
        ) else {
            panic!("a 422 is a refusal");
        };
        assert_eq!(refusal.reason(), "Invalid");
        let message = refusal.to_string();
        assert!(message.contains("apply Service ns/my.synapse"), "{message}");
        assert!(
            message.contains("metadata.name: Invalid value"),
            "{message}"
        );
        assert!(message.contains("change the spec"), "{message}");
        assert_eq!(ErrorKind::FieldConflict.label(), "field-conflict");
    }
}
