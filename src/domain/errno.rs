//! The wire error codes of the original backends (SPEC §2), always sent as strings.

use serde::{Serialize, Serializer};

/// One row of the errno table. The numeric codes and the misspelt `UnkownErr`
/// are kept exactly as the original frontends expect them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    Ok,
    DbErr,
    NoData,
    DataExist,
    DataErr,
    SessionErr,
    LoginErr,
    ParamErr,
    UserErr,
    RoleErr,
    PwdErr,
    ReqErr,
    IpErr,
    ThirdErr,
    IoErr,
    ServerErr,
    UnkownErr,
}

impl Errno {
    pub fn code(self) -> &'static str {
        match self {
            Errno::Ok => "0",
            Errno::DbErr => "4001",
            Errno::NoData => "4002",
            Errno::DataExist => "4003",
            Errno::DataErr => "4004",
            Errno::SessionErr => "4101",
            Errno::LoginErr => "4102",
            Errno::ParamErr => "4103",
            Errno::UserErr => "4104",
            Errno::RoleErr => "4105",
            Errno::PwdErr => "4106",
            Errno::ReqErr => "4201",
            Errno::IpErr => "4202",
            Errno::ThirdErr => "4301",
            Errno::IoErr => "4302",
            Errno::ServerErr => "4500",
            Errno::UnkownErr => "4501",
        }
    }
}

impl Serialize for Errno {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_json_strings() {
        let json = serde_json::to_string(&Errno::DataErr).expect("serialise");
        assert_eq!(json, "\"4004\"");
        assert_eq!(Errno::UnkownErr.code(), "4501");
    }
}
