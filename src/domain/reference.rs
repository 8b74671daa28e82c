use std::fmt;
use uuid::Uuid;

/// How a request names a resource: a string that parses as a UUID is an id, anything else is a
/// unique name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ref {
    /// By UUID.
    Id(Uuid),
    /// By unique name.
    Name(String),
}

impl Ref {
    /// Reads a reference as given in a request.
    pub fn parse(s: &str) -> Ref {
        match Uuid::parse_str(s) {
            Ok(id) => Ref::Id(id),
            Err(_) => Ref::Name(s.to_string()),
        }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Id(id) => write!(f, "{id}"),
            Ref::Name(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_is_an_id_anything_else_a_name() {
        let id = Uuid::new_v4();
        assert_eq!(Ref::parse(&id.to_string()), Ref::Id(id));
        assert_eq!(Ref::parse("exact"), Ref::Name("exact".into()));
    }
}
