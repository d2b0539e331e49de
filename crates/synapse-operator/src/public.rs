//! What `spec.expose` makes public, and the problems that stop it: Synapse's public URL, the
//! federation endpoint its `.well-known` announces, and the settings a user's own file must
//! agree with. Pure.

use synapse_types::expose::{Expose, Federation};

/// The federation port announced by the server well-known, and the dedicated one.
const WELL_KNOWN_PORT: u16 = 443;
const DEDICATED_PORT: u16 = 8448;

use crate::homeserver_file::PublicSettings;

/// A Synapse reachable from outside the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Public {
    /// The public host of the client and federation APIs.
    pub host: String,
    /// The Matrix server name, whose host the `.well-known` delegation is served on.
    pub server_name: String,
    /// The port of the server name's host that federation arrives on.
    pub federation_port: u16,
}

impl Public {
    /// The hosts routed to Synapse: the public host, and the server name's when it differs.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts = vec![self.host.clone()];
        if self.server_name != self.host {
            hosts.push(self.server_name.clone());
        }
        hosts
    }

    /// Synapse's `public_baseurl`: what clients are told to use.
    pub fn base_url(&self) -> String {
        format!("https://{}/", self.host)
    }

    /// Where other servers reach the federation API: what Synapse's `/.well-known/matrix/server`
    /// announces (its server name on port 443), or port 8448 without it.
    pub fn federation_endpoint(&self) -> String {
        format!("{}:{}", self.server_name, self.federation_port)
    }

    /// Whether Synapse answers `/.well-known/matrix/server` (`serve_server_wellknown`): not with a
    /// dedicated federation port, which other servers find without it.
    pub fn serves_server_well_known(&self) -> bool {
        self.federation_port == WELL_KNOWN_PORT
    }
}

/// Why `spec.expose` cannot be applied as asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExposeProblem {
    #[error(
        "spec.expose needs a server name without a port, but it is {0:?}: a server name with a \
         port is reached at that port directly, never through .well-known on port 443; remove \
         spec.expose and route that port yourself"
    )]
    ServerNameWithPort(String),
    #[error(
        "your homeserver.yaml sets {key}: {found}, but spec.expose needs {wanted}: remove the key \
         from your file (the operator sets it) or make it {wanted}"
    )]
    Conflict {
        key: &'static str,
        found: String,
        wanted: String,
    },
}

impl ExposeProblem {
    pub fn reason(&self) -> &'static str {
        match self {
            ExposeProblem::ServerNameWithPort(_) => "ExposedServerNameHasPort",
            ExposeProblem::Conflict { .. } => "ExposureConflict",
        }
    }
}

/// What `expose` makes public for `server_name`, checked against the settings the user's own
/// file makes (`own`; default for values mode).
pub fn public(
    expose: Option<&Expose>,
    server_name: &str,
    own: &PublicSettings,
) -> Result<Option<Public>, ExposeProblem> {
    let Some(expose) = expose else {
        return Ok(None);
    };
    if server_name.contains(':') {
        return Err(ExposeProblem::ServerNameWithPort(server_name.to_owned()));
    }
    let public = Public {
        host: expose.host.clone(),
        server_name: server_name.to_owned(),
        federation_port: match expose.federation {
            Federation::WellKnown => WELL_KNOWN_PORT,
            Federation::Port8448 => DEDICATED_PORT,
        },
    };
    // Synapse adds the trailing slash itself.
    if let Some(found) = &own.public_baseurl
        && found.trim_end_matches('/') != public.base_url().trim_end_matches('/')
    {
        return Err(ExposeProblem::Conflict {
            key: "public_baseurl",
            found: found.clone(),
            wanted: public.base_url(),
        });
    }
    if !own.x_forwarded {
        // Behind the proxy, every client would have the proxy's address: one rate limit for all.
        return Err(ExposeProblem::Conflict {
            key: "x_forwarded",
            found: "false or unset on the client listener".into(),
            wanted: "true".into(),
        });
    }
    if public.serves_server_well_known() && own.serve_server_wellknown == Some(false) {
        return Err(ExposeProblem::Conflict {
            key: "serve_server_wellknown",
            found: "false".into(),
            wanted: "true".into(),
        });
    }
    Ok(Some(public))
}

#[cfg(test)]
mod tests {
    use synapse_types::expose::Gateway;

    use super::*;

    fn forwarded() -> PublicSettings {
        PublicSettings {
            x_forwarded: true,
            ..PublicSettings::default()
        }
    }

    fn expose(host: &str) -> Expose {
        Expose {
            host: host.into(),
            gateway: Some(Gateway::default()),
            ..Expose::default()
        }
    }

    #[test]
    fn the_public_face_follows_the_host_and_the_server_name() {
        let own = forwarded();
        assert_eq!(public(None, "example.com", &own), Ok(None));
        let public = public(Some(&expose("matrix.example.com")), "example.com", &own)
            .unwrap()
            .unwrap();
        assert_eq!(public.base_url(), "https://matrix.example.com/");
        assert_eq!(public.federation_endpoint(), "example.com:443");
    }

    #[test]
    fn a_server_name_with_a_port_or_a_conflicting_file_is_refused() {
        let own = forwarded();
        let refused = public(Some(&expose("m.example.com")), "example.com:8448", &own);
        assert_eq!(refused.unwrap_err().reason(), "ExposedServerNameHasPort");

        let same = PublicSettings {
            public_baseurl: Some("https://m.example.com".into()),
            serve_server_wellknown: Some(true),
            x_forwarded: true,
        };
        assert!(public(Some(&expose("m.example.com")), "example.com", &same).is_ok());
        let other = PublicSettings {
            public_baseurl: Some("https://chat.example.com/".into()),
            ..forwarded()
        };
        let conflict = public(Some(&expose("m.example.com")), "example.com", &other).unwrap_err();
        assert_eq!(conflict.reason(), "ExposureConflict");
        assert!(
            conflict
                .to_string()
                .contains("public_baseurl: https://chat.example.com/")
        );
        let off = PublicSettings {
            serve_server_wellknown: Some(false),
            ..forwarded()
        };
        let conflict = public(Some(&expose("m.example.com")), "example.com", &off).unwrap_err();
        assert!(conflict.to_string().contains("serve_server_wellknown"));
        let direct = PublicSettings::default();
        let conflict = public(Some(&expose("m.example.com")), "example.com", &direct).unwrap_err();
        assert!(conflict.to_string().contains("x_forwarded"), "{conflict}");
    }
}
